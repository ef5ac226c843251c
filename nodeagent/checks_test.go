package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

func TestRunCheck(t *testing.T) {
	var code atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := int(code.Load())
		if c == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", c) // a 3xx is an answer: not followed
			return
		}
		w.WriteHeader(c)
		_, _ = w.Write([]byte("status: UP"))
	}))
	defer srv.Close()
	client := checkClient()
	ctx := context.Background()
	for _, tc := range []struct {
		code int
		body string
		want string // "" passes; else the error contains it
	}{
		{200, "", ""},
		{204, "", ""},
		{302, "", ""},
		{200, "UP", ""},
		{200, "DOWN", `body lacks "DOWN"`},
		{500, "", "500 Internal Server Error"},
		{404, "", "404 Not Found"},
	} {
		code.Store(int32(tc.code))
		err := runCheck(ctx, client, Check{HTTP: srv.URL + "/health", Body: tc.body, Timeout: time.Second})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%d %q: %v, want %q", tc.code, tc.body, err, tc.want)
		}
	}
	host, _, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if err := runCheck(ctx, client, Check{TCP: srv.Listener.Addr().String(), Timeout: time.Second}); err != nil || host != "127.0.0.1" {
		t.Errorf("tcp to a listener: %v", err)
	}
	closed := refuser(t)
	if err := runCheck(ctx, client, Check{TCP: closed, Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), closed) {
		t.Errorf("tcp to a closed port: %v", err)
	}
	if err := runCheck(ctx, client, Check{HTTP: "http://" + closed + "/health", Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "GET http://"+closed) {
		t.Errorf("http to a closed port: %v", err)
	}
}

func TestChecksThresholds(t *testing.T) {
	svc := Service{Name: "orders", ID: "o-1", Port: 80, Check: Check{HTTP: "http://127.0.0.1:80/", FailuresBeforeCritical: 2, SuccessBeforePassing: 2}}
	t0 := time.Unix(1000, 0)
	c := newChecks([]Service{svc, {Name: "nochk", ID: "n-1", Port: 81}}, t0)
	boom := errors.New("GET http://127.0.0.1:80/: 503 Service Unavailable")
	steps := []struct {
		err      error
		changed  bool
		critical bool
	}{
		{boom, false, false}, // one failure is not enough
		{nil, false, false},  // and a pass resets the count
		{boom, false, false},
		{boom, true, true}, // two in a row
		{boom, false, true},
		{nil, false, true}, // one pass is not enough to come back
		{nil, true, false},
	}
	for i, s := range steps {
		if got := c.record("o-1", s.err, t0.Add(time.Duration(i)*time.Second)); got != s.changed {
			t.Fatalf("step %d: changed %v, want %v", i, got, s.changed)
		}
		if crit, out := c.status("o-1"); crit != s.critical || crit && out != boom.Error() {
			t.Fatalf("step %d: critical %v %q", i, crit, out)
		}
	}
	c.record("o-1", boom, t0)
	c.record("o-1", boom, t0.Add(time.Minute))
	r := c.report()
	if len(r) != 1 || r[0].Status != schema.HealthCritical || r[0].Kind != "http" || !r[0].Since.Equal(t0.Add(time.Minute)) || r[0].Detail != boom.Error() {
		t.Fatalf("report %+v: only the checked service, critical since the second failure", r)
	}
	if f, b := c.failing(time.Time{}); len(f) != 1 || f[0] != "o-1 (http): "+boom.Error() || len(b) != 0 || c.critical() != 1 {
		t.Fatalf("failing %q, before %q", f, b)
	}
	if f, b := c.failing(time.Now().Add(time.Hour)); len(f) != 0 || len(b) != 1 {
		t.Fatalf("critical before the time asked: failing %q, before %q", f, b)
	}
}

func TestChecksReportBounded(t *testing.T) {
	var svcs []Service
	for i := range 100 {
		svcs = append(svcs, Service{Name: "s", ID: "i-" + string(rune('A'+i%26)) + strings.Repeat("x", i), Check: Check{TCP: "127.0.0.1:1", FailuresBeforeCritical: 1, SuccessBeforePassing: 1}})
	}
	c := newChecks(svcs, time.Now())
	c.record(svcs[99].ID, errors.New("refused"), time.Now())
	r := c.report()
	if len(r) != schema.MaxHealthChecks || r[0].Instance != svcs[99].ID || r[0].Status != schema.HealthCritical {
		t.Fatalf("%d checks, first %+v: bounded, failing first", len(r), r[0])
	}
}

// plainRegistry hides a registry's HealthSetter: a registry that has no
// health of its own, like ZooKeeper's Curator layout.
type plainRegistry struct{ registries.Registry }

// TestAppCheckReachesRegistries: a failing app check withdraws the instance
// where the registry has no health, marks it critical where it has, makes
// the active interfaces critical naming the check, and all of it comes
// back when the app passes again.
func TestAppCheckReachesRegistries(t *testing.T) {
	var failing atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "db down", http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleProvider)
	cfg.Services[0].Port = atoiT(t, port)
	cfg.Services[0].Check = Check{HTTP: app.URL + "/health", Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond}
	cfg.fill()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context, spec InterfaceSpec) (registries.Registry, error) {
		r, err := fleet.opener(ctx, spec)
		if spec.Name == cfg.Start.Name {
			r = plainRegistry{r}
		}
		return r, err
	}
	h := NewHost(cfg, open, NewHub(), nil, quiet())
	if got := h.Instances()[0].Metadata[registries.MetaCheckPath]; got != "/health" {
		t.Fatalf("the instance carries check path %q, want /health", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := activated(t, ctx, h, cfg)
	changed := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.checks.run(ctx, time.Now, func(ctx context.Context, svc Service, passing bool, out string) {
			h.setHealth(ctx, s, svc, passing, out)
		}, func() { changed <- struct{}{} })
	}()
	resolve := func(addr string) int {
		got, err := memoryClient(fleet, addr).Resolve(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	statusOf := func(o Observation, name string) InterfaceObservation {
		for _, i := range o.Interfaces {
			if i.Name == name {
				return i
			}
		}
		t.Fatalf("no %s in %+v", name, o)
		return InterfaceObservation{}
	}
	if resolve("zk:2181") != 1 || resolve("consul:8500") != 1 {
		t.Fatal("registered in both")
	}

	failing.Store(true)
	<-changed
	if resolve("zk:2181") != 0 || resolve("consul:8500") != 0 {
		t.Fatal("a failing app is withdrawn from ZooKeeper and critical (not resolved) in Consul")
	}
	o := h.Observe(ctx, s, time.Now())
	for _, name := range []string{"zookeeper", "consul"} {
		i := statusOf(o, name)
		if i.Status != schema.HealthCritical || len(i.Failing) != 1 || !strings.Contains(i.Failing[0], "503 Service Unavailable") || len(i.Missing) != 0 {
			t.Fatalf("%s: %+v: critical, naming the check, not a missing registration", name, i)
		}
	}
	if o.ChecksFailing != 1 {
		t.Fatalf("%d checks failing, want 1", o.ChecksFailing)
	}
	rep := healthOf(cfg.Node, o)
	if len(rep.Checks) != 1 || rep.Checks[0].Status != schema.HealthCritical || !strings.Contains(rep.Interfaces[0].Detail, "app check failing (1): orders-node-1 (http)") {
		t.Fatalf("report %+v", rep)
	}
	body, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(schema.TypeHealth, body); err != nil {
		t.Fatalf("the report must meet its schema: %v", err)
	}

	failing.Store(false)
	<-changed
	if resolve("zk:2181") != 1 || resolve("consul:8500") != 1 {
		t.Fatal("a passing app is back in both")
	}
	o = h.Observe(ctx, s, time.Now())
	if i := statusOf(o, "consul"); i.Status != schema.HealthPassing || i.Registered != 1 {
		t.Fatalf("consul %+v", i)
	}
	cancel()
	<-done
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// memoryClient is a client of the fleet's registry at addr.
func memoryClient(f *fakeFleet, addr string) registries.Registry {
	return memory.New(f.store(addr), quiet())
}

// TestAppBrokenBeforeTheActivate: an app already failing its check when the
// new interface becomes primary is no verdict on the interface — a warning
// naming the check — while one that breaks after is critical.
func TestAppBrokenBeforeTheActivate(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "db down", http.StatusServiceUnavailable)
		}
	}))
	defer app.Close()
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleProvider)
	cfg.Services[0].Port = atoiT(t, port)
	cfg.Services[0].Check = Check{HTTP: app.URL + "/health", Interval: time.Second, Timeout: 500 * time.Millisecond, FailuresBeforeCritical: 1, SuccessBeforePassing: 1}
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	ctx := context.Background()
	check := func() {
		t.Helper()
		if h.checks.record(cfg.Services[0].ID, runCheck(ctx, checkClient(), cfg.Services[0].Check), time.Now()) {
			s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
			h.setHealth(ctx, s, cfg.Services[0], !failing.Load(), "")
		}
	}
	check() // broken before any rollout
	s := activated(t, ctx, h, cfg)
	consul := func() InterfaceObservation {
		o := h.Observe(ctx, s, time.Now())
		i := slices.IndexFunc(o.Interfaces, func(i InterfaceObservation) bool { return i.Name == "consul" })
		return o.Interfaces[i]
	}
	if c := consul(); c.Status != schema.HealthWarning || len(c.FailingBefore) != 1 || len(c.Failing) != 0 {
		t.Fatalf("broken before the activate: %+v, want a warning", c)
	}
	rep := healthOf(cfg.Node, h.Observe(ctx, s, time.Now()))
	if d := rep.Interfaces[0].Detail + rep.Interfaces[1].Detail; !strings.Contains(d, "app check failing since before the activate (1): orders-node-1 (http)") {
		t.Fatalf("detail %q", d)
	}
	failing.Store(false)
	check()
	failing.Store(true)
	check() // broken again, now after the activate
	if c := consul(); c.Status != schema.HealthCritical || len(c.Failing) != 1 {
		t.Fatalf("broken after the activate: %+v, want critical", c)
	}
}
