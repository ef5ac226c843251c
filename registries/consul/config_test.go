package consul_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*consul.Config)
		ok   bool
	}{
		{"default", func(*consul.Config) {}, true},
		{"https", func(c *consul.Config) { c.Scheme = "https" }, true},
		{"empty address", func(c *consul.Config) { c.Address = "" }, false},
		{"address with scheme", func(c *consul.Config) { c.Address = "http://127.0.0.1:8500" }, false},
		{"unknown scheme", func(c *consul.Config) { c.Scheme = "ftp" }, false},
		{"short TTL", func(c *consul.Config) { c.CheckTTL = 100 * time.Millisecond }, false},
		{"deregister below Consul's minimum", func(c *consul.Config) { c.DeregisterCriticalAfter = 30 * time.Second }, false},
		{"short watch wait", func(c *consul.Config) { c.WatchWait = 0 }, false},
		{"certificate without key", func(c *consul.Config) { c.TLS.CertFile = "/x.pem" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := consul.DefaultConfig()
			tc.mod(&cfg)
			c, err := consul.New(cfg, nil)
			if c != nil {
				_ = c.Close()
			}
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, consul.ErrConfig)) {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestTLSAndToken checks the wiring of the ACL token and the TLS settings
// against an HTTPS endpoint whose certificate only the configured CA
// trusts, answering the agent's leader and health endpoints as Consul does.
func TestTLSAndToken(t *testing.T) {
	var tokens atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Store(r.Header.Get("X-Consul-Token"))
		switch {
		case r.URL.Path == "/v1/status/leader":
			_, _ = w.Write([]byte(`"127.0.0.1:8300"`))
		case strings.HasPrefix(r.URL.Path, "/v1/health/service/"):
			w.Header().Set("X-Consul-Index", "7")
			_, _ = w.Write([]byte(`[{"Node":{"Address":"10.0.0.1"},"Service":{"ID":"web:1","Service":"web","Port":80,"Meta":{"k":"v"}}}]`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	cfg := consul.DefaultConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "https://")
	cfg.Scheme = "https"
	cfg.Token = "s3cr3t"
	cfg.TLS.CAPem = ca
	c, err := consul.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping over TLS with the configured CA: %v", err)
	}
	if got := tokens.Load(); got != "s3cr3t" {
		t.Fatalf("token sent %q, want the configured one", got)
	}
	got, err := c.Resolve(context.Background(), "web")
	want := registries.Instance{Service: "web", ID: "1", Address: "10.0.0.1", Port: 80, Metadata: map[string]string{"k": "v"}}
	if err != nil || len(got) != 1 || !got[0].Equal(want) {
		t.Fatalf("resolve: %+v, %v; want [%+v] (node address used when the service has none)", got, err, want)
	}

	// Without the CA the same endpoint is refused: TLS is really checked.
	cfg.TLS.CAPem = nil
	untrusting, err := consul.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	if err := untrusting.Ping(context.Background()); err == nil || registries.Retriable(err) {
		t.Fatalf("ping without the CA: %v, want a non-retriable certificate error", err)
	}
}
