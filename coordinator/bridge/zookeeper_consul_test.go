package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

// realServers makes clients of the shared ZooKeeper (under a base path of
// the test's own) and Consul.
type realServers struct {
	zkAddrs    []string
	base       string
	consulAddr string
}

func needReal(t testing.TB) realServers {
	return realServers{
		zkAddrs:    servers.RequireZooKeeper(t),
		base:       "/" + registrytest.Unique("regshift-bridge") + "/services",
		consulAddr: servers.RequireConsul(t),
	}
}

// zk returns a ZooKeeper client: a provider host, or the bridge's source.
func (s realServers) zk(t testing.TB) *zookeeper.Client {
	t.Helper()
	cfg := zookeeper.DefaultConfig(s.zkAddrs...)
	cfg.BasePath = s.base
	c, err := zookeeper.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// consul returns a Consul client; keep=true leaves its registrations in
// place when it closes, as the bridge's target client does.
func (s realServers) consul(t testing.TB, keep bool) *consul.Client {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = s.consulAddr
	cfg.DeregisterOnClose = !keep
	c, err := consul.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestZooKeeperToConsul runs the bridge between the real servers: initial
// sync, a provider leaving the source, and a bridge restart while the
// source changed, next to instances the bridge must leave alone.
func TestZooKeeperToConsul(t *testing.T) {
	s := needReal(t)
	ctx := registrytest.Ctx(t)
	svcA, svcB := registrytest.Unique("orders"), registrytest.Unique("billing")
	p1, p2 := s.zk(t), s.zk(t)
	a1, a2, a3 := registrytest.Inst(svcA, "a1", 8001), registrytest.Inst(svcA, "a2", 8002), registrytest.Inst(svcA, "a3", 8003)
	b1, b2 := registrytest.Inst(svcB, "b1", 9001), registrytest.Inst(svcB, "b2", 9002)
	register(t, p1, a1, a2)
	register(t, p2, a3, b1, b2)

	// Left alone: a provider registered in Consul itself, and another
	// bridge's mirror.
	native := registrytest.Inst(svcA, "native", 8100)
	foreign := bridge.Mirror(registrytest.Inst(svcB, "foreign", 9100), "other-bridge", "zookeeper")
	others := s.consul(t, false)
	register(t, others, native, foreign)

	cfg := bridge.DefaultConfig()
	cfg.Name = registrytest.Unique("bridge")
	cfg.ResyncInterval = 5 * time.Second
	view := s.consul(t, false)
	first := start(t, s.zk(t), s.consul(t, true), cfg)
	registrytest.ResolvesTo(t, view, svcA, append(mirrors(cfg.Name, "zookeeper", a1, a2, a3), native))
	registrytest.ResolvesTo(t, view, svcB, append(mirrors(cfg.Name, "zookeeper", b1, b2), foreign))
	assertParity(t, first.Bridge, svcA, []string{"a1", "a2", "a3"}, []string{"native"})
	assertParity(t, first.Bridge, svcB, []string{"b1", "b2"}, []string{"foreign"})

	// A provider host disappears: its session closes, its znodes vanish.
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, view, svcA, append(mirrors(cfg.Name, "zookeeper", a1, a2), native))
	registrytest.ResolvesTo(t, view, svcB, []registries.Instance{foreign})

	// The bridge stops; meanwhile a2 deregisters and a4 arrives.
	first.stop()
	if err := p1.Deregister(ctx, svcA, "a2"); err != nil {
		t.Fatal(err)
	}
	a4 := registrytest.Inst(svcA, "a4", 8004)
	register(t, s.zk(t), a4)

	second := start(t, s.zk(t), s.consul(t, true), cfg)
	registrytest.ResolvesTo(t, view, svcA, append(mirrors(cfg.Name, "zookeeper", a1, a4), native))
	registrytest.ResolvesTo(t, view, svcB, []registries.Instance{foreign})
	assertParity(t, second.Bridge, svcA, []string{"a1", "a4"}, []string{"native"})
}

// assertParity checks one service's parity: same ids, and extra ids (none
// missing).
func assertParity(t *testing.T, b *bridge.Bridge, service string, same, extra []string) {
	t.Helper()
	registrytest.Eventually(t, registrytest.Patience, "parity of "+service, func() error {
		r, err := b.Parity(context.Background())
		if err != nil {
			return err
		}
		p, ok := r.Service(service)
		if !ok {
			return fmt.Errorf("%s not in the report", service)
		}
		if got := ids(p.Same); fmt.Sprint(got) != fmt.Sprint(same) || len(p.Missing) != 0 || fmt.Sprint(ids(p.Extra)) != fmt.Sprint(extra) {
			return fmt.Errorf("%+v, want same %v, extra %v, none missing", p, same, extra)
		}
		return nil
	})
}

func ids(es []bridge.Endpoint) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// TestBothDirectionsDoNotLoop runs a ZooKeeper -> Consul and a Consul ->
// ZooKeeper bridge at once on the real servers: each registry ends with its
// own providers plus mirrors of the other's, and nothing more.
func TestBothDirectionsDoNotLoop(t *testing.T) {
	s := needReal(t)
	prefix := registrytest.Unique("both")
	svc := prefix + "-orders"
	ours := func(service string) bool { return strings.HasPrefix(service, prefix) }
	z1 := registrytest.Inst(svc, "z1", 8001) // still on ZooKeeper
	c1 := registrytest.Inst(svc, "c1", 8002) // already moved to Consul
	register(t, s.zk(t), z1)
	register(t, s.consul(t, false), c1)

	fwd := bridge.DefaultConfig()
	fwd.Name, fwd.SourceName, fwd.Include = registrytest.Unique("fwd"), "zookeeper", ours
	rev := bridge.DefaultConfig()
	rev.Name, rev.SourceName, rev.Include = registrytest.Unique("rev"), "consul", ours
	start(t, s.zk(t), s.consul(t, true), fwd)
	start(t, s.consul(t, false), s.zk(t), rev)

	consulView, zkView := s.consul(t, false), s.zk(t)
	wantConsul := append(mirrors(fwd.Name, "zookeeper", z1), c1)
	wantZK := append(mirrors(rev.Name, "consul", c1), z1)
	registrytest.ResolvesTo(t, consulView, svc, wantConsul)
	registrytest.ResolvesTo(t, zkView, svc, wantZK)

	// A change on one side travels once, and only once, to the other.
	z2 := registrytest.Inst(svc, "z2", 8003)
	register(t, s.zk(t), z2)
	registrytest.ResolvesTo(t, consulView, svc, append(wantConsul, mirrors(fwd.Name, "zookeeper", z2)...))
	registrytest.ResolvesTo(t, zkView, svc, append(wantZK, z2))
}
