package nodeagent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

func TestObserve(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleBoth)
	zk, consul := fleet.store("zk:2181"), fleet.store("consul:8500")
	ctx := context.Background()
	for _, st := range []*memory.Store{zk, consul} {
		if err := memory.New(st, quiet()).Register(ctx, registries.Instance{Service: "payments", ID: "pay-1", Address: "127.0.0.1", Port: 9000}); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	s := activated(t, ctx, h, cfg)
	status := func(o Observation) map[string]schema.HealthStatus {
		m := map[string]schema.HealthStatus{}
		for _, i := range o.Interfaces {
			m[i.Name] = i.Status
		}
		return m
	}
	o := h.Observe(ctx, s, time.Now())
	if st := status(o); st["consul"] != schema.HealthPassing || st["zookeeper"] != schema.HealthPassing {
		t.Fatalf("both registered and agreeing: %v", st)
	}
	if o.LastCommand != "2" || len(o.Services) != 1 || !o.Services[0].Same || o.Interfaces[0].Registered != 1 {
		t.Fatalf("observation %+v", o)
	}

	// Consul loses pay-1: the primary disagrees with the fallback.
	if err := memory.New(consul, quiet()).Deregister(ctx, "payments", "pay-1"); err != nil {
		t.Fatal(err)
	}
	o = h.Observe(ctx, s, time.Now())
	if st := status(o); st["consul"] != schema.HealthWarning || !slices.Equal(o.Services[0].Missing, []string{"pay-1"}) {
		t.Fatalf("after losing pay-1 in consul: %v %+v", st, o.Services)
	}
	if d := o.Interfaces[0].Detail; o.Interfaces[0].Name != "consul" || d != "resolves of 1 of 1 services differ from the fallback" {
		t.Fatalf("consul's detail after losing pay-1: %q", d)
	}

	// This host's own registration vanishes from ZooKeeper: critical there.
	if err := memory.New(zk, quiet()).Deregister(ctx, "orders", "orders-node-1"); err != nil {
		t.Fatal(err)
	}
	o = h.Observe(ctx, s, time.Now())
	for _, i := range o.Interfaces {
		if i.Name == "zookeeper" && (i.Status != schema.HealthCritical || !slices.Equal(i.Missing, []string{"orders-node-1"}) ||
			i.Detail != "registrations missing: 1 of 1") {
			t.Fatalf("zookeeper after losing orders: %+v", i)
		}
	}

	// Consul stops answering: critical, and the error is counted.
	consul.SetDown(true)
	o = h.Observe(ctx, s, time.Now())
	for _, i := range o.Interfaces {
		if i.Name == "consul" && (i.Status != schema.HealthCritical || i.Connected || i.Errors == 0) {
			t.Fatalf("consul down: %+v", i)
		}
	}
}
