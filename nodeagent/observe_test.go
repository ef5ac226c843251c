package nodeagent

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
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

// TestObserveProbes: a consumer whose new interface resolves an address
// that refuses, while the old one's accepts, turns the new interface
// critical after probe.failures rounds, naming the service and endpoint;
// the report carries both interfaces' probes and meets its schema.
func TestObserveProbes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	good := l.Addr().(*net.TCPAddr).Port
	wrong := refuser(t)
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleConsumer)
	cfg.Probe.Failures = 2
	ctx := context.Background()
	_, wrongPort, _ := net.SplitHostPort(wrong)
	for addr, port := range map[string]int{"zk:2181": good, "consul:8500": atoiT(t, wrongPort)} {
		if err := memoryClient(fleet, addr).Register(ctx, registries.Instance{Service: "payments", ID: "pay-1", Address: "127.0.0.1", Port: port}); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	before, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	for _, e := range Reconcile(before) {
		if err := h.Apply(ctx, before, e); err != nil {
			t.Fatal(err)
		}
	}
	if o := h.Observe(ctx, before, time.Now()); len(o.Interfaces[0].Probes) != 0 {
		t.Fatalf("no fallback, nothing probed: %+v", o.Interfaces[0])
	}
	s := activated(t, ctx, h, cfg)
	byName := func(o Observation, name string) InterfaceObservation {
		i := slices.IndexFunc(o.Interfaces, func(i InterfaceObservation) bool { return i.Name == name })
		return o.Interfaces[i]
	}
	o := h.Observe(ctx, s, time.Now())
	if c := byName(o, "consul"); c.Status == schema.HealthCritical || len(c.Probes) != 1 || c.Probes[0].Reachable != 0 || c.Probes[0].Probed != 1 {
		t.Fatalf("one bad round is not enough: %+v", c)
	}
	o = h.Observe(ctx, s, time.Now())
	c, z := byName(o, "consul"), byName(o, "zookeeper")
	if c.Status != schema.HealthCritical || c.ProbeFailing != 1 || !strings.Contains(c.ProbeDetail, "payments") || !strings.Contains(c.ProbeDetail, wrong) {
		t.Fatalf("consul after 2 bad rounds: %+v", c)
	}
	if len(z.Probes) != 1 || z.Probes[0].Reachable != 1 || z.Status != schema.HealthPassing {
		t.Fatalf("zookeeper's endpoint accepts: %+v", z)
	}
	rep := healthOf(cfg.Node, o)
	body, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(schema.TypeHealth, body); err != nil {
		t.Fatalf("the report must meet its schema: %v", err)
	}
	if !strings.Contains(string(body), `"probes":[{"service":"payments","probed":1,"reachable":0`) || !strings.Contains(string(body), "consumer probe: payments") {
		t.Fatalf("report %s", body)
	}
}
