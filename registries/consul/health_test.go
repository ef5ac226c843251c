package consul_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

// TestCriticalCheckInConsul: a mark is the status and output of the
// instance's check, as Consul's health endpoint shows them; the keepalive
// keeps it critical (not passing, not expired) period after period; the
// output is bounded; passing restores the check.
func TestCriticalCheckInConsul(t *testing.T) {
	c, raw, a, b := twoInstances(t, "health-check")
	svc := a.Service
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{a, b})

	const why = "GET /health: connection refused"
	if err := c.SetHealth(context.Background(), svc, "a", false, why); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{b})
	awaitCheck(t, raw, svc, "a", api.HealthCritical, why)

	// Over three TTLs (1s) the agent's check stays critical with the output: a
	// keepalive marking it passing, or none at all (it would expire with
	// Consul's "TTL expired" output), shows here.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		status, output := agentCheck(t, raw, svc, "a")
		if status != api.HealthCritical || output != why {
			t.Fatalf("agent check of a is %s %q, want critical %q", status, output, why)
		}
	}
	if got, err := c.Resolve(context.Background(), svc); err != nil || registrytest.SameSet(got, []registries.Instance{b}) != nil {
		t.Fatalf("resolve after three TTLs: %v, %v; want b only", got, err)
	}

	// An output that grows with what the app answered is cut to 1 KiB. (An
	// output-only change reaches the catalog at the agent's
	// check_update_interval: read the agent.)
	if err := c.SetHealth(context.Background(), svc, "a", false, strings.Repeat("x", 5000)); err != nil {
		t.Fatal(err)
	}
	if _, output := agentCheck(t, raw, svc, "a"); len(output) > 1024 || !strings.HasSuffix(output, "…") {
		t.Fatalf("agent check output is %d bytes ending %q, want at most 1024 ending in …", len(output), output[max(0, len(output)-8):])
	}

	if err := c.SetHealth(context.Background(), svc, "a", true, "200 OK"); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{a, b})
	awaitCheck(t, raw, svc, "a", api.HealthPassing, "200 OK")
}

// TestCriticalRegisteredCritical: an instance marked critical that the
// agent lost is registered again critical, never passing, and a SetHealth
// that failed (cancelled context) is applied by the keepalive.
func TestCriticalRegisteredCritical(t *testing.T) {
	c, raw, _, b := twoInstances(t, "health-lost")
	svc := b.Service

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SetHealth(cancelled, svc, "a", false, "refused"); !registries.Retriable(err) {
		t.Fatalf("SetHealth with a cancelled context: %v, want a retriable error", err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{b})
	awaitCheck(t, raw, svc, "a", api.HealthCritical, "refused")

	_, meta, err := raw.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Agent().ServiceDeregister(svc + ":a"); err != nil {
		t.Fatalf("deregister a behind the client's back: %v", err)
	}
	registrytest.Eventually(t, registrytest.Patience, "a registered again", func() error {
		entries, _, err := raw.Catalog().Service(svc, "", nil)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.ServiceID == svc+":a" && e.CreateIndex > meta.LastIndex {
				return nil
			}
		}
		return fmt.Errorf("no entry of a created after index %d", meta.LastIndex)
	})
	// The registration carried the status: the catalog's first sight of the
	// new a is critical, and so is every look at the agent's until the
	// output follows.
	checks, _, err := raw.Health().Checks(svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := statusOf(checks, svc+":a"); st != api.HealthCritical {
		t.Fatalf("the catalog's first sight of the re-registered a: %q, want critical", st)
	}
	registrytest.Eventually(t, registrytest.Patience, "the re-registered a's output", func() error {
		status, output := agentCheck(t, raw, svc, "a")
		if status != api.HealthCritical {
			t.Fatalf("re-registered a is %s at the agent, want critical", status)
		}
		if output != "refused" {
			return fmt.Errorf("output %q", output)
		}
		return nil
	})
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{b})
}

// twoInstances registers instances a and b of a new service through a
// client whose check TTL is the 1s minimum (a keepalive every ~333ms), and
// removes them at the end of the test.
func twoInstances(t *testing.T, prefix string) (c *consul.Client, raw *api.Client, a, b registries.Instance) {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = servers.RequireConsul(t)
	cfg.CheckTTL = time.Second
	c = newClient(t, cfg)
	raw = rawClient(t, cfg.Address)
	svc := registrytest.Unique(prefix)
	a, b = registrytest.Inst(svc, "a", 8001), registrytest.Inst(svc, "b", 8002)
	t.Cleanup(func() { removeAll(t, c, raw, svc, "a", "b") })
	for _, in := range []registries.Instance{a, b} {
		if err := c.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	return c, raw, a, b
}

// awaitCheck waits until Consul's health endpoint (the catalog) shows the
// check of service/id with status and output.
func awaitCheck(t *testing.T, raw *api.Client, service, id, status, output string) {
	t.Helper()
	registrytest.Eventually(t, registrytest.Patience, fmt.Sprintf("check of %s/%s %s", service, id, status), func() error {
		checks, _, err := raw.Health().Checks(service, nil)
		if err != nil {
			return err
		}
		for _, ch := range checks {
			if ch.ServiceID != service+":"+id {
				continue
			}
			if ch.Status != status || ch.Output != output {
				return fmt.Errorf("check %s is %s %q", ch.CheckID, ch.Status, ch.Output)
			}
			return nil
		}
		return fmt.Errorf("no check of %s/%s", service, id)
	})
}

// agentCheck returns the status and output of the check of service/id as
// the local agent holds it now.
func agentCheck(t *testing.T, raw *api.Client, service, id string) (status, output string) {
	t.Helper()
	checks, err := raw.Agent().ChecksWithFilter(fmt.Sprintf("ServiceID == %q", service+":"+id))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 {
		t.Fatalf("the agent holds %d checks of %s/%s, want 1", len(checks), service, id)
	}
	for _, ch := range checks {
		status, output = ch.Status, ch.Output
	}
	return status, output
}

func statusOf(checks api.HealthChecks, serviceID string) string {
	for _, ch := range checks {
		if ch.ServiceID == serviceID {
			return ch.Status
		}
	}
	return ""
}

// removeAll closes c (no keepalive re-creates anything after) and removes
// the instances of service from the shared agent, whatever the test left
// behind.
func removeAll(t *testing.T, c *consul.Client, raw *api.Client, service string, ids ...string) {
	_ = c.Close()
	for _, id := range ids {
		_ = raw.Agent().ServiceDeregister(service + ":" + id)
	}
	registrytest.Eventually(t, registrytest.Patience, service+" gone from Consul", func() error {
		entries, _, err := raw.Catalog().Service(service, "", nil)
		if err == nil && len(entries) > 0 {
			return fmt.Errorf("%d instances left", len(entries))
		}
		return err
	})
}
