package nodeagent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/schema"
)

// TestHealthOfLongListsEncodes: however many instances an observation finds
// missing or differing, the health report encodes within its schema, says
// how many, and lists what fits.
func TestHealthOfLongListsEncodes(t *testing.T) {
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%05d", prefix, i)
		}
		return out
	}
	registered := func(missing []string) InterfaceObservation {
		return InterfaceObservation{Name: "consul", Phase: schema.StateActive, Primary: true, Status: schema.HealthCritical,
			Expected: len(missing) + 1, Registered: 1, Missing: missing,
			Detail: fmt.Sprintf("registrations missing: %d of %d", len(missing), len(missing)+1)}
	}
	differing := func(services, missing int) Observation {
		o := Observation{Interfaces: []InterfaceObservation{{Name: "consul", Phase: schema.StateActive, Primary: true,
			Status: schema.HealthWarning, Detail: fmt.Sprintf("resolves of %d of %d services differ from the fallback", services, services)}}}
		for s := range services {
			o.Services = append(o.Services, ServiceParity{Service: fmt.Sprintf("svc%d", s), Missing: ids("m", missing), Extra: ids("x", 2)})
		}
		return o
	}
	for _, tc := range []struct {
		name string
		obs  Observation
		want []string // in the detail, in this order
		not  string   // not in the detail
	}{
		{"three missing, all listed", Observation{Interfaces: []InterfaceObservation{registered(ids("orders", 3))}},
			[]string{"registrations missing: 3 of 4: orders-00000, orders-00001, orders-00002"}, ""},
		{"10,000 registrations missing", Observation{Interfaces: []InterfaceObservation{registered(ids("orders", 10_000))}},
			[]string{"registrations missing: 10000 of 10001: orders-00000, orders-00001, ", " more"}, ""},
		{"10,000 differ in each of two services", differing(2, 10_000),
			[]string{"resolves of 2 of 2 services differ", "svc0: 10000 missing: m-00000, ", "svc0: 2 extra: x-00000, x-00001",
				"svc1: 10000 missing: m-00000, ", "svc1: 2 extra: x-00000, x-00001"}, ""},
		{"200 services differ", differing(200, 3),
			[]string{"resolves of 200 of 200 services differ", "svc0: 3 missing; svc0: 2 extra; svc1: 3 missing"}, ""},
		{"one lacks an instance", Observation{Interfaces: differing(1, 0).Interfaces,
			Services: []ServiceParity{{Service: "orders", Missing: []string{"orders-1"}}}},
			[]string{"resolves of 1 of 1 services differ from the fallback; orders: 1 missing: orders-1"}, "extra"},
		{"a long error", Observation{Interfaces: []InterfaceObservation{{Name: "consul", Phase: schema.StateActive,
			Status: schema.HealthCritical, Detail: "dial: " + strings.Repeat("ü", 3000)}}},
			[]string{"dial: üü"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.At = time.Now()
			h := healthOf("node-1", tc.obs)
			if _, err := schema.Encode(h); err != nil {
				t.Fatalf("the health report does not encode: %v", err)
			}
			detail := h.Interfaces[0].Detail
			if len(detail) > schema.MaxDetail {
				t.Errorf("detail of %d bytes, over %d", len(detail), schema.MaxDetail)
			}
			rest := detail
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("detail lacks %q (in order): %s", w, detail)
				}
				rest = rest[i+len(w):]
			}
			if tc.not != "" && strings.Contains(detail, tc.not) {
				t.Errorf("detail has %q: %s", tc.not, detail)
			}
		})
	}
}

// TestHelloEncodes: a host that went through many rollouts still says
// hello: removed interfaces (no package left to name their kind) are left
// out, and a long version is cut.
func TestHelloEncodes(t *testing.T) {
	cfg := testConfig(t, RoleProvider)
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	for i := range 20 {
		name := fmt.Sprintf("consul%d", i)
		s.Interfaces[name] = agentapi.Interface{Name: name, Phase: schema.StateRemoved}
	}
	old := Version
	Version = strings.Repeat("v", 100)
	t.Cleanup(func() { Version = old })
	a := &Agent{cfg: cfg, host: NewHost(cfg, (&fakeFleet{}).opener, NewHub(), nil, quiet()), cp: Checkpoint{State: s}, started: time.Now()}
	h := a.hello()
	if _, err := schema.Encode(h); err != nil {
		t.Fatalf("hello does not encode: %v", err)
	}
	if len(h.Interfaces) != 1 || h.Interfaces[0].Name != cfg.Start.Name || h.Interfaces[0].Kind != cfg.Start.Type {
		t.Fatalf("hello's interfaces: %+v", h.Interfaces)
	}
}

// TestLargestHealthFitsARecord: the largest health report an agent builds
// — every app check and probe list full, every text at its bound in
// three-byte characters — encodes within its schema and below the events
// topic's record limit. Probes sit only on the primary and the fallback.
func TestLargestHealthFitsARecord(t *testing.T) {
	long := strings.Repeat("€", schema.MaxDetail+10)
	c := newChecks(nil, time.Now())
	for i := range 2 * schema.MaxHealthChecks {
		id := fmt.Sprintf("%03d%s", i, strings.Repeat("i", 125)) // idRE: 128 at most
		c.m[id] = &appCheck{svc: Service{Name: strings.Repeat("s", 128), ID: id, Check: Check{HTTP: "http://127.0.0.1:1/", FailuresBeforeCritical: 1}},
			status: schema.HealthPassing, since: time.Now()}
		c.record(id, fmt.Errorf("%s", long), time.Now())
	}
	var probes []schema.Probe
	for i := range schema.MaxHealthProbes {
		probes = append(probes, schema.Probe{Service: fmt.Sprintf("%03d%s", i, strings.Repeat("s", 125)), Probed: schema.MaxProbed,
			Detail: schema.Truncate(long, schema.MaxDetail)})
	}
	failing, _ := c.failing(time.Time{})
	o := Observation{At: time.Now(), Checks: c.report(), ChecksFailing: c.critical()}
	for i := range maxInterfaces + 2 {
		in := InterfaceObservation{Name: fmt.Sprintf("iface-%d", i), Phase: schema.StateActive, Status: schema.HealthCritical,
			Detail: long, Failing: failing, FailingBefore: failing}
		if i < 2 {
			in.Probes, in.ProbeDetail, in.Primary = probes, long, i == 0
		}
		o.Interfaces = append(o.Interfaces, in)
	}
	body, err := schema.Encode(healthOf("node-1", o))
	if err != nil {
		t.Fatalf("the largest report does not encode: %v", err)
	}
	if len(body) >= events.DefaultMaxMessageBytes {
		t.Fatalf("the largest report is %d bytes, the record limit %d", len(body), events.DefaultMaxMessageBytes)
	}
	t.Logf("largest health report: %d bytes (record limit %d)", len(body), events.DefaultMaxMessageBytes)
}
