package eureka_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/eureka"
	"github.com/regshift/regshift/registries/registrytest"
)

// testConfig is the settings of the tests' clients: leases renewed every
// second, watches fetching every 200ms.
func testConfig(addr string) eureka.Config {
	cfg := eureka.DefaultConfig(addr)
	cfg.RenewalInterval = time.Second
	cfg.LeaseDuration = 5 * time.Second
	cfg.WatchInterval = 200 * time.Millisecond
	return cfg
}

func newClient(t testing.TB, cfg eureka.Config) *eureka.Client {
	t.Helper()
	c, err := eureka.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new eureka client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addr := servers.RequireEureka(t)
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry { return newClient(t, testConfig(addr)) },
		Disruptable: func(t *testing.T) (registries.Registry, func()) {
			r := &registrytest.Recorder{Registry: newClient(t, testConfig(addr))}
			return r, func() { forget(t, addr, r.Keys()) }
		},
		Down:   func(t *testing.T) registries.Registry { return newClient(t, testConfig(servers.ClosedAddr(t))) },
		Health: true,
	})
}

// forget cancels the registrations of keys behind the client's back —
// what the server's eviction does to leases it saw expire (a partition
// longer than the lease), or a restart to all — and waits until the
// client has registered every one again.
func forget(t testing.TB, addr string, keys []registries.Key) {
	t.Helper()
	raw := rawServer{addr: addr}
	before := make(map[registries.Key]int64, len(keys))
	for _, k := range keys {
		before[k] = raw.registered(t, k)
		raw.cancel(t, k)
	}
	for _, k := range keys {
		registrytest.Eventually(t, registrytest.Patience, "registered again "+k.Service+"/"+k.ID, func() error {
			if at := raw.registered(t, k); at <= before[k] {
				return fmt.Errorf("registered at %d, not after %d", at, before[k])
			}
			return nil
		})
	}
}

// rawServer reads and writes a Eureka server without the adapter.
type rawServer struct{ addr string }

func (s rawServer) url(service, id string) string {
	return "http://" + s.addr + "/eureka/apps/" + strings.ToUpper(service) + "/" + url.PathEscape(id)
}

func (s rawServer) do(t testing.TB, method, u string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func (s rawServer) cancel(t testing.TB, k registries.Key) {
	t.Helper()
	if code := s.do(t, http.MethodDelete, s.url(k.Service, k.ID), nil); code != http.StatusOK {
		t.Fatalf("cancel %v behind the client's back: HTTP %d", k, code)
	}
}

// rawInstance is what the tests read of an instance.
type rawInstance struct {
	Instance rawInfo `json:"instance"`
}

type rawInfo struct {
	InstanceID string            `json:"instanceId"`
	App        string            `json:"app"`
	HostName   string            `json:"hostName"`
	IPAddr     string            `json:"ipAddr"`
	Status     string            `json:"status"`
	VIPAddress string            `json:"vipAddress"`
	Metadata   map[string]string `json:"metadata"`
	LeaseInfo  struct {
		RenewalIntervalInSecs int   `json:"renewalIntervalInSecs"`
		DurationInSecs        int   `json:"durationInSecs"`
		RegistrationTimestamp int64 `json:"registrationTimestamp"`
		LastRenewalTimestamp  int64 `json:"lastRenewalTimestamp"`
	} `json:"leaseInfo"`
}

// renewed reports whether the lease was renewed since it was registered.
func (in rawInfo) renewed() bool {
	return in.LeaseInfo.LastRenewalTimestamp > in.LeaseInfo.RegistrationTimestamp
}

// app reads the instances of service's app (GET /eureka/apps/{app}, from
// the server's response cache).
func (s rawServer) app(t testing.TB, service string) []rawInfo {
	t.Helper()
	var app struct {
		Application struct {
			Instances []rawInfo `json:"instance"`
		} `json:"application"`
	}
	s.do(t, http.MethodGet, "http://"+s.addr+"/eureka/apps/"+strings.ToUpper(service), &app)
	return app.Application.Instances
}

// get reads the instance service/id (GET /eureka/apps/{app}/{id}, which
// reads the registry itself, not the response cache); false when the
// server has none.
func (s rawServer) get(t testing.TB, service, id string) (rawInstance, bool) {
	t.Helper()
	var in rawInstance
	code := s.do(t, http.MethodGet, s.url(service, id), &in)
	return in, code == http.StatusOK
}

// registered returns when the server registered k (0: it has no such
// instance).
func (s rawServer) registered(t testing.TB, k registries.Key) int64 {
	t.Helper()
	in, ok := s.get(t, k.Service, k.ID)
	if !ok {
		return 0
	}
	return in.Instance.LeaseInfo.RegistrationTimestamp
}

func BenchmarkRegistry(b *testing.B) {
	addr := servers.RequireEureka(b)
	registrytest.Bench(b, func(b *testing.B) registries.Registry {
		c, err := eureka.New(eureka.DefaultConfig(addr), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	})
}
