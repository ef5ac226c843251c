package etcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/etcd"
	"github.com/regshift/regshift/registries/registrytest"
)

func newClient(t testing.TB, cfg etcd.Config) *etcd.Client {
	t.Helper()
	c, err := etcd.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new etcd client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawClient is a plain etcd client, for what a test does behind the
// adapter's back.
func rawClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	eps := servers.RequireEtcd(t)
	prefix := registrytest.PerTest(func(*testing.T) string { return "/" + registrytest.Unique("regshift-test") + "/services" })
	config := func(t *testing.T) etcd.Config {
		cfg := etcd.DefaultConfig(eps...)
		cfg.Prefix = prefix(t)
		return cfg
	}
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry { return newClient(t, config(t)) },
		Disruptable: func(t *testing.T) (registries.Registry, func()) {
			cfg := config(t)
			c := newClient(t, cfg)
			return c, func() { revokeLeases(t, eps, cfg.Prefix) }
		},
		Down: func(t *testing.T) registries.Registry {
			cfg := etcd.DefaultConfig(servers.ClosedAddr(t))
			cfg.RequestTimeout = time.Second
			return newClient(t, cfg)
		},
		Health: true,
	})
}

// revokeLeases revokes, from another client, the leases that hold the keys
// under prefix — what a lease that expired while its client was cut off
// does: etcd deletes every key of the lease, and the client must grant a
// new one and put its registrations back. It returns once every key is
// back under a lease it did not revoke.
func revokeLeases(t testing.TB, eps []string, prefix string) {
	t.Helper()
	raw := rawClient(t, eps)
	ctx := registrytest.Ctx(t)
	resp, err := raw.Get(ctx, prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	revoked := map[clientv3.LeaseID]bool{}
	keys := map[string]bool{}
	for _, kv := range resp.Kvs {
		keys[string(kv.Key)] = true
		if id := clientv3.LeaseID(kv.Lease); id != 0 && !revoked[id] {
			if _, err := raw.Revoke(ctx, id); err != nil {
				t.Fatalf("revoke lease %x: %v", id, err)
			}
			revoked[id] = true
		}
	}
	if len(revoked) == 0 {
		t.Fatal("no lease holds a key under " + prefix)
	}
	registrytest.Eventually(t, registrytest.Patience, "keys back under a new lease", func() error {
		for key := range keys {
			resp, err := raw.Get(ctx, key)
			if err != nil {
				return err
			}
			if len(resp.Kvs) == 0 {
				return fmt.Errorf("%s not back", key)
			}
			if revoked[clientv3.LeaseID(resp.Kvs[0].Lease)] {
				return fmt.Errorf("%s still under a revoked lease", key)
			}
		}
		return nil
	})
}

func BenchmarkRegistry(b *testing.B) {
	eps := servers.RequireEtcd(b)
	prefix := "/" + registrytest.Unique("regshift-bench")
	registrytest.Bench(b, func(b *testing.B) registries.Registry {
		cfg := etcd.DefaultConfig(eps...)
		cfg.Prefix = prefix
		c, err := etcd.New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	})
}

// TestFailedRegisterCompletedByLeaseLoop: a registration whose request
// failed transiently (here: its context was already cancelled) is held and
// completed by the lease loop; Deregister cancels such a held one.
func TestFailedRegisterCompletedByLeaseLoop(t *testing.T) {
	cfg := etcd.DefaultConfig(servers.RequireEtcd(t)...)
	cfg.Prefix = "/" + registrytest.Unique("regshift-test")
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

// TestRegisterRightAfterLeaseLoss: a registration made when the lease has
// just been revoked, before the client noticed, succeeds under the new
// lease the client grants, and the earlier registration comes back with it.
func TestRegisterRightAfterLeaseLoss(t *testing.T) {
	eps := servers.RequireEtcd(t)
	raw := rawClient(t, eps)
	cfg := etcd.DefaultConfig(eps...)
	cfg.Prefix = uniquePrefix(t, raw)
	c := newClient(t, cfg)
	svc := registrytest.Unique("relet")
	a, b := registrytest.Inst(svc, "a", 1), registrytest.Inst(svc, "b", 2)
	registerAll(t, c, a)
	if _, err := raw.Revoke(context.Background(), leaseOf(t, raw, cfg.Prefix+"/"+svc+"/a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(context.Background(), b); err != nil {
		t.Fatalf("register right after the lease was revoked: %v", err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{a, b})
}
