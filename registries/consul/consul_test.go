package consul_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

func newClient(t testing.TB, cfg consul.Config) *consul.Client {
	t.Helper()
	c, err := consul.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new consul client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addr := servers.RequireConsul(t)
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry {
			cfg := consul.DefaultConfig()
			cfg.Address = addr
			return newClient(t, cfg)
		},
		Disruptable: func(t *testing.T) (registries.Registry, func()) {
			cfg := consul.DefaultConfig()
			cfg.Address = addr
			cfg.CheckTTL = 3 * time.Second
			r := &registrytest.Recorder{Registry: newClient(t, cfg)}
			return r, func() { forget(t, addr, r.Keys()) }
		},
		Down: func(t *testing.T) registries.Registry {
			cfg := consul.DefaultConfig()
			cfg.Address = servers.ClosedAddr(t)
			return newClient(t, cfg)
		},
		Health: true,
	})
}

// forget removes the registrations of keys from the agent behind the
// client's back — what an agent restart without its state, or the reaper
// after a long partition, does — so that every one must be re-created.
// (TestAgentRestart restarts a private agent, which keeps its state.)
func forget(t testing.TB, addr string, keys []registries.Key) {
	t.Helper()
	c := rawClient(t, addr)
	_, meta, err := c.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	before := meta.LastIndex
	for _, k := range keys {
		if err := c.Agent().ServiceDeregister(k.Service + ":" + k.ID); err != nil {
			t.Fatalf("deregister %v behind the client's back: %v", k, err)
		}
	}
	// Proof that they were lost and made again: every catalog entry was
	// created after the deregistration.
	for _, k := range keys {
		registrytest.Eventually(t, registrytest.Patience, "re-created "+k.Service+":"+k.ID, func() error {
			entries, _, err := c.Catalog().Service(k.Service, "", nil)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.ServiceID == k.Service+":"+k.ID && e.CreateIndex > before {
					return nil
				}
			}
			return fmt.Errorf("no entry created after index %d", before)
		})
	}
}

func BenchmarkRegistry(b *testing.B) {
	addr := servers.RequireConsul(b)
	registrytest.Bench(b, func(b *testing.B) registries.Registry {
		cfg := consul.DefaultConfig()
		cfg.Address = addr
		c, err := consul.New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	})
}

// TestFailedRegisterCompletedByKeepalive: a registration whose request
// failed transiently (here: its context was already cancelled) is held and
// completed by the keepalive; Deregister cancels such a held one.
func TestFailedRegisterCompletedByKeepalive(t *testing.T) {
	cfg := consul.DefaultConfig()
	cfg.Address = servers.RequireConsul(t)
	cfg.CheckTTL = 3 * time.Second
	c := newClient(t, cfg)
	svc := registrytest.Unique("late")
	in := registrytest.Inst(svc, "a", 80)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Register(cancelled, in); !registries.Retriable(err) {
		t.Fatalf("register with a cancelled context: %v, want a retriable error", err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{in})
	if err := c.Deregister(context.Background(), svc, "a"); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, c, svc, nil)
}

// TestFreshRegistrationIsPassing: an instance's TTL check is registered
// passing, so it is never critical between its registration and its first
// keepalive: the agent's own check is passing at once, and the catalog's
// first sight of the instance is already passing (a node activated on
// Consul is not judged on a check that starts critical).
func TestFreshRegistrationIsPassing(t *testing.T) {
	cfg := consul.DefaultConfig()
	cfg.Address = servers.RequireConsul(t)
	cfg.CheckTTL = time.Minute // no keepalive within the test: only the registration's status is seen
	c := newClient(t, cfg)
	raw := rawClient(t, cfg.Address)
	svc := registrytest.Unique("fresh")
	if err := c.Register(context.Background(), registrytest.Inst(svc, "a", 80)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Deregister(context.Background(), svc, "a") })
	checks, err := raw.Agent().ChecksWithFilter(fmt.Sprintf("ServiceName == %q", svc))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 {
		t.Fatalf("agent holds %d checks for %s, want 1", len(checks), svc)
	}
	for _, ch := range checks {
		if ch.Status != api.HealthPassing {
			t.Fatalf("fresh check %s is %s, want passing", ch.CheckID, ch.Status)
		}
	}
	registrytest.Eventually(t, 10*time.Second, svc+" in the catalog, passing at first sight", func() error {
		entries, _, err := raw.Health().Service(svc, "", false, nil)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return fmt.Errorf("not in the catalog yet")
		}
		for _, e := range entries {
			if s := e.Checks.AggregatedStatus(); s != api.HealthPassing {
				t.Fatalf("the catalog first saw %s/%s %s, want passing", svc, e.Service.ID, s)
			}
		}
		return nil
	})
}
