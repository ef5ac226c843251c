package open_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

func mustOpen(t *testing.T, kind registries.Kind, s open.Settings) registries.Registry {
	t.Helper()
	r, err := open.Open(kind, s, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	t.Cleanup(func() { _ = r.Close() }) // a second Close does nothing
	return r
}

// TestZooKeeperAddressWithBasePath opens ZooKeeper from an address as a plan
// writes it and checks that the registration lands under the address's
// base path, where a client configured directly with it finds it.
func TestZooKeeperAddressWithBasePath(t *testing.T) {
	addrs := servers.RequireZooKeeper(t)
	base := "/" + registrytest.Unique("regshift-open") + "/services"
	r := mustOpen(t, registries.KindZooKeeper, open.Settings{Address: strings.Join(addrs, ", ") + base})
	inst := registrytest.Inst("orders", "orders-1", 8080)
	if err := r.Register(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	cfg := zookeeper.DefaultConfig(addrs...)
	cfg.BasePath = base
	direct, err := zookeeper.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	registrytest.ResolvesTo(t, direct, "orders", []registries.Instance{inst})
}

// TestConsulKeepOnClose checks that a client opened with KeepOnClose leaves
// its registrations when it closes (the bridge's mirrors survive a
// coordinator restart) and that one opened without it removes them.
func TestConsulKeepOnClose(t *testing.T) {
	addr := servers.RequireConsul(t)
	for _, tc := range []struct {
		name string
		keep bool
	}{{"keep", true}, {"remove", false}} {
		t.Run(tc.name, func(t *testing.T) {
			service := registrytest.Unique("regshift-open")
			inst := registrytest.Inst(service, "i-1", 8080)
			r := mustOpen(t, registries.KindConsul, open.Settings{Address: addr, KeepOnClose: tc.keep})
			if err := r.Register(context.Background(), inst); err != nil {
				t.Fatal(err)
			}
			other := mustOpen(t, registries.KindConsul, open.Settings{Address: addr})
			registrytest.ResolvesTo(t, other, service, []registries.Instance{inst})
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if !tc.keep {
				registrytest.ResolvesTo(t, other, service, nil)
				return
			}
			got, err := other.Resolve(context.Background(), service)
			if err != nil {
				t.Fatal(err)
			}
			if err := registrytest.SameSet(got, []registries.Instance{inst}); err != nil {
				t.Errorf("after Close with KeepOnClose: %v", err)
			}
			if err := other.Deregister(context.Background(), service, inst.ID); err != nil {
				t.Errorf("clean up: %v", err)
			}
		})
	}
}

// TestConsulMirrors checks that a client opened with Mirrors writes catalog
// entries on MirrorNode, which outlive its Close whatever KeepOnClose says,
// and that a new one on the same node removes them.
func TestConsulMirrors(t *testing.T) {
	addr := servers.RequireConsul(t)
	node := registrytest.Unique("regshift-mirrors")
	cfg := api.DefaultNonPooledConfig() // no idle connections left behind
	cfg.Address = addr
	raw, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = raw.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, nil) })
	service := registrytest.Unique("regshift-open")
	inst := registrytest.Inst(service, "i-1", 8080)
	s := open.Settings{Address: addr, Mirrors: true, MirrorNode: node}
	r := mustOpen(t, registries.KindConsul, s)
	if err := r.Register(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := raw.Catalog().Service(service, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Node != node {
		t.Fatalf("after Close the catalog holds %d entries of %s, want one on %s", len(got), service, node)
	}
	next := mustOpen(t, registries.KindConsul, s)
	registrytest.ResolvesTo(t, next, service, []registries.Instance{inst})
	if err := next.Deregister(context.Background(), service, inst.ID); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, next, service, nil)
}
