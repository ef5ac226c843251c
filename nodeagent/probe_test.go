package nodeagent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// probeNoLeaks fails the test when a goroutine it started outlives it and
// its cleanups (listeners, servers).
func probeNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// acceptor listens on 127.0.0.1 and accepts (and closes) every connection
// until the test ends; it returns its address.
func acceptor(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	})
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return l.Addr().String()
}

// refuser returns an address on 127.0.0.1 nothing listens on.
func refuser(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// at is an instance of svc with id, at addr (host:port), with the HTTP
// check path when one is given.
func at(svc, id, addr string, checkPath ...string) registries.Instance {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	in := registries.Instance{Service: svc, ID: id, Address: host, Port: n}
	if len(checkPath) > 0 {
		in.Metadata = map[string]string{registries.MetaCheckPath: checkPath[0]}
	}
	return in
}

// recordProbes wraps p's probes; probed returns the targets probed since
// its last call.
func recordProbes(p *prober) (probed func() []target) {
	var mu sync.Mutex
	var got []target
	real := p.probe
	p.probe = func(ctx context.Context, t target) outcome {
		mu.Lock()
		got = append(got, t)
		mu.Unlock()
		return real(ctx, t)
	}
	return func() []target {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

func testProbe() Probe {
	return Probe{PerService: 4, PerRound: 64, Timeout: 5 * time.Second, Failures: 3, Concurrency: 8}
}

func TestProbeWrongAddressesFailAfterFailures(t *testing.T) {
	probeNoLeaks(t)
	f1, f2 := acceptor(t), acceptor(t)
	p1, p2 := refuser(t), refuser(t)
	if p2 < p1 {
		p1, p2 = p2, p1 // the detail lists endpoints in address order
	}
	primary := map[string][]registries.Instance{"orders": {at("orders", "orders-p1", p1), at("orders", "orders-p2", p2)}}
	fallback := map[string][]registries.Instance{"orders": {at("orders", "orders-f1", f1), at("orders", "orders-f2", f2)}}
	p := newProber(testProbe())
	for round := 1; round <= 3; round++ {
		r := p.round(t.Context(), "consul", "zookeeper", []string{"orders"}, primary, fallback)
		wantPrim := schema.Probe{Service: "orders", Probed: 2, Reachable: 0,
			Detail: fmt.Sprintf("refused: %s (orders-p1), %s (orders-p2)", p1, p2)}
		if len(r.Primary) != 1 || r.Primary[0] != wantPrim {
			t.Fatalf("round %d: primary probes %+v, want [%+v]", round, r.Primary, wantPrim)
		}
		if want := (schema.Probe{Service: "orders", Probed: 2, Reachable: 2}); len(r.Fallback) != 1 || r.Fallback[0] != want {
			t.Fatalf("round %d: fallback probes %+v, want [%+v]", round, r.Fallback, want)
		}
		if round < 3 {
			if len(r.Failing) > 0 || r.Detail != "" {
				t.Fatalf("round %d: failing %v (%q) before 3 rounds", round, r.Failing, r.Detail)
			}
			continue
		}
		if !slices.Equal(r.Failing, []string{"orders"}) {
			t.Fatalf("round 3: failing %v, want [orders]", r.Failing)
		}
		want := fmt.Sprintf("consumer probe: orders: 2 of 2 endpoints refuse here, 2 of 2 accept through zookeeper: %s orders-p1, %s orders-p2", p1, p2)
		if r.Detail != want {
			t.Fatalf("round 3: detail\n%q, want\n%q", r.Detail, want)
		}
	}
}

func TestProbeNeverFailing(t *testing.T) {
	probeNoLeaks(t)
	good := acceptor(t)
	dead, dead2 := refuser(t), refuser(t)
	both := []registries.Instance{at("orders", "o1", good), at("orders", "o2", dead)}
	cases := []struct {
		name              string
		primary, fallback map[string][]registries.Instance
		wantPrim          schema.Probe
	}{
		{"unreachable through both", map[string][]registries.Instance{"orders": both}, map[string][]registries.Instance{"orders": both},
			schema.Probe{Service: "orders", Probed: 2, Reachable: 1, Detail: "refused: " + dead + " (o2)"}},
		{"no fallback", map[string][]registries.Instance{"orders": {at("orders", "o2", dead)}}, nil,
			schema.Probe{Service: "orders", Probed: 1, Detail: "refused: " + dead + " (o2)"}},
		{"empty sets", map[string][]registries.Instance{"orders": nil}, map[string][]registries.Instance{"orders": {}},
			schema.Probe{Service: "orders"}},
		{"fallback refuses too", map[string][]registries.Instance{"orders": {at("orders", "o2", dead)}},
			map[string][]registries.Instance{"orders": {at("orders", "f1", dead2)}},
			schema.Probe{Service: "orders", Probed: 1, Detail: "refused: " + dead + " (o2)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testProbe()
			cfg.Failures = 1
			p := newProber(cfg)
			for round := range 3 {
				r := p.round(t.Context(), "consul", "zookeeper", []string{"orders"}, c.primary, c.fallback)
				if len(r.Failing) > 0 || r.Detail != "" {
					t.Fatalf("round %d: failing %v (%q)", round, r.Failing, r.Detail)
				}
				if len(r.Primary) != 1 || r.Primary[0] != c.wantPrim {
					t.Fatalf("round %d: primary probes %+v, want [%+v]", round, r.Primary, c.wantPrim)
				}
				if c.fallback == nil && r.Fallback != nil {
					t.Fatalf("round %d: fallback probes %+v without a fallback", round, r.Fallback)
				}
			}
		})
	}
}

func TestProbeHTTPCheckPath(t *testing.T) {
	probeNoLeaks(t)
	var mu sync.Mutex
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		switch {
		case r.URL.Path == "/ok":
			_, _ = w.Write([]byte(strings.Repeat("ok", 10_000)))
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "/fail", http.StatusFound) // not followed
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	cases := []struct {
		name, path string
		reachable  bool
		request    bool // an HTTP request reaches the server
	}{
		{"200", "/ok", true, true},
		{"302 not followed", "/moved", true, true},
		{"500", "/fail", false, true},
		{"no leading slash: TCP", "fail", true, false},
		{"too long: TCP", "/fail" + strings.Repeat("x", maxCheckPath), true, false},
		{"control character: TCP", "/fail\n", true, false},
		{"bad escape: TCP", "/fail%zz", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			hits = nil
			mu.Unlock()
			p := newProber(testProbe())
			primary := map[string][]registries.Instance{"orders": {at("orders", "o1", addr, c.path)}}
			r := p.round(t.Context(), "consul", "", []string{"orders"}, primary, nil)
			if len(r.Primary) != 1 || r.Primary[0].Probed != 1 || (r.Primary[0].Reachable == 1) != c.reachable {
				t.Fatalf("primary probes %+v, want reachable %v", r.Primary, c.reachable)
			}
			if !c.reachable && r.Primary[0].Detail != "check failed: "+addr+" (o1)" {
				t.Fatalf("detail %q", r.Primary[0].Detail)
			}
			mu.Lock()
			defer mu.Unlock()
			if c.request && !slices.Equal(hits, []string{c.path}) || !c.request && len(hits) > 0 {
				t.Fatalf("requests %q, want one of %q: %v", hits, c.path, c.request)
			}
		})
	}
}

func TestProbeBudgetRotatesOverServices(t *testing.T) {
	probeNoLeaks(t)
	cfg := testProbe()
	cfg.PerRound = 5
	var services []string
	primary, fallback := map[string][]registries.Instance{}, map[string][]registries.Instance{}
	for i := range 10 {
		svc := fmt.Sprintf("svc%d", i)
		services = append(services, svc)
		for j := range 2 {
			in := at(svc, fmt.Sprintf("%s-%d", svc, j), acceptor(t))
			primary[svc] = append(primary[svc], in)
			fallback[svc] = append(fallback[svc], in) // the same endpoints: probed once
		}
	}
	p := newProber(cfg)
	probed := recordProbes(p)
	seen := map[string]bool{}
	for round := range 6 {
		r := p.round(t.Context(), "consul", "zookeeper", services, primary, fallback)
		got := probed()
		if len(got) > cfg.PerRound {
			t.Fatalf("round %d: %d probes, budget %d", round, len(got), cfg.PerRound)
		}
		distinct := map[target]bool{}
		for _, tg := range got {
			if distinct[tg] {
				t.Fatalf("round %d: %v probed twice", round, tg)
			}
			distinct[tg] = true
		}
		for _, e := range r.Primary {
			if e.Probed != 2 || e.Reachable != 2 {
				t.Fatalf("round %d: %+v, want 2 of 2", round, e)
			}
			seen[e.Service] = true
		}
	}
	if len(seen) != len(services) {
		t.Fatalf("probed over 6 rounds: %v, want all %d services", seen, len(services))
	}
}

// TestProbeSampleOnPrimaryOnlyFirst: the primary endpoints the fallback
// does not return are probed first, in turn; a service the budget trims
// to a sample smaller than itself is still probed, one round each.
func TestProbeSampleOnPrimaryOnlyFirst(t *testing.T) {
	probeNoLeaks(t)
	var shared, only []registries.Instance
	for i := range 3 {
		shared = append(shared, at("orders", fmt.Sprintf("s%d", i), acceptor(t)))
		only = append(only, at("orders", fmt.Sprintf("p%d", i), acceptor(t)))
	}
	cfg := testProbe()
	cfg.PerService, cfg.PerRound = 1, 1
	p := newProber(cfg)
	probed := recordProbes(p)
	primary := map[string][]registries.Instance{"orders": append(slices.Clone(shared), only...)}
	fallback := map[string][]registries.Instance{"orders": shared}
	got := map[string]bool{}
	for round := range 3 {
		r := p.round(t.Context(), "consul", "zookeeper", []string{"orders"}, primary, fallback)
		tg := probed()
		if len(tg) != 1 || len(r.Primary) != 1 || r.Primary[0].Probed != 1 {
			t.Fatalf("round %d: probed %v, primary %+v; want one primary endpoint", round, tg, r.Primary)
		}
		got[tg[0].hostport] = true
	}
	for _, in := range only {
		if !got[endpoint(in)] {
			t.Fatalf("probed %v over 3 rounds, want every primary-only endpoint %v", got, only)
		}
	}
}

// TestProbeCounters: a good probed round resets a service's counter, a
// round in which it is not probed keeps it, and services no longer
// consumed are forgotten.
func TestProbeCounters(t *testing.T) {
	probeNoLeaks(t)
	// Each service its own endpoints: a target two services share is
	// probed once a round and costs one. Listen before picking closed
	// ports, so no closed port is taken again.
	right := map[string][]registries.Instance{
		"a": {at("a", "a1", acceptor(t))},
		"b": {at("b", "b1", acceptor(t))},
	}
	wrong := map[string][]registries.Instance{
		"a": {at("a", "a1", refuser(t))},
		"b": {at("b", "b1", refuser(t))},
	}
	cfg := testProbe()
	cfg.Failures = 2
	round := func(p *prober, services []string, primary map[string][]registries.Instance) probeRound {
		return p.round(t.Context(), "consul", "zookeeper", services, primary, right)
	}
	t.Run("good round resets", func(t *testing.T) {
		p := newProber(cfg)
		steps := []struct {
			primary map[string][]registries.Instance
			failing []string
		}{{wrong, nil}, {right, nil}, {wrong, nil}, {wrong, []string{"a"}}, {right, nil}}
		for i, s := range steps {
			if r := round(p, []string{"a"}, s.primary); !slices.Equal(r.Failing, s.failing) {
				t.Fatalf("step %d: failing %v, want %v", i, r.Failing, s.failing)
			}
		}
	})
	t.Run("not probed keeps", func(t *testing.T) {
		c := cfg
		c.PerRound = 2 // one service a round: a1 and b1 cost two each
		p := newProber(c)
		for i, want := range [][]string{nil, nil, {"a"}, {"a", "b"}} {
			r := round(p, []string{"a", "b"}, wrong)
			if len(r.Primary) != 1 {
				t.Fatalf("step %d: primary probes %+v, want one service", i, r.Primary)
			}
			if !slices.Equal(r.Failing, want) {
				t.Fatalf("step %d: failing %v, want %v", i, r.Failing, want)
			}
			if len(want) == 2 && (r.Primary[0].Service != "b" || !strings.Contains(r.Detail, "a: 1 of 1") || !strings.Contains(r.Detail, "b: 1 of 1")) {
				t.Fatalf("step %d: primary %+v, detail %q: want b probed, a and b named", i, r.Primary, r.Detail)
			}
		}
	})
	t.Run("forgets services", func(t *testing.T) {
		p := newProber(cfg)
		round(p, []string{"a", "b"}, wrong)
		if r := round(p, []string{"a", "b"}, wrong); !slices.Equal(r.Failing, []string{"a", "b"}) {
			t.Fatalf("failing %v, want [a b]", r.Failing)
		}
		if r := round(p, []string{"b"}, wrong); !slices.Equal(r.Failing, []string{"b"}) || len(p.services) != 1 {
			t.Fatalf("failing %v, state of %d services; want [b] and 1", r.Failing, len(p.services))
		}
		if r := round(p, []string{"a", "b"}, wrong); !slices.Equal(r.Failing, []string{"b"}) {
			t.Fatalf("failing %v after a came back, want [b]", r.Failing)
		}
	})
	t.Run("another primary starts again", func(t *testing.T) {
		p := newProber(cfg)
		round(p, []string{"a"}, wrong)
		if r := p.round(t.Context(), "etcd", "zookeeper", []string{"a"}, wrong, right); len(r.Failing) > 0 {
			t.Fatalf("failing %v after the primary changed", r.Failing)
		}
	})
}

func TestProbeDisabled(t *testing.T) {
	cfg := testProbe()
	cfg.Disabled = true
	p := newProber(cfg)
	probed := recordProbes(p)
	primary := map[string][]registries.Instance{"orders": {at("orders", "o1", "127.0.0.1:1")}}
	r := p.round(t.Context(), "consul", "zookeeper", []string{"orders"}, primary, primary)
	if r.Primary != nil || r.Fallback != nil || r.Failing != nil || r.Detail != "" || len(probed()) > 0 {
		t.Fatalf("disabled: %+v", r)
	}
}

// TestProbeCancel: a cancelled context ends the round although a probe
// hangs, and what was cut short moves no counter.
func TestProbeCancel(t *testing.T) {
	probeNoLeaks(t)
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	cfg := testProbe()
	cfg.Failures, cfg.Timeout = 1, time.Hour
	p := newProber(cfg)
	primary := map[string][]registries.Instance{"orders": {at("orders", "o1", srv.Listener.Addr().String(), "/hang")}}
	fallback := map[string][]registries.Instance{"orders": {at("orders", "f1", acceptor(t))}}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-asked; cancel() }()
	r := p.round(ctx, "consul", "zookeeper", []string{"orders"}, primary, fallback)
	if len(r.Failing) > 0 || len(r.Primary) != 1 || r.Primary[0].Probed != 0 {
		t.Fatalf("cancelled round: %+v", r)
	}
	if st := p.services["orders"]; st.bad != 0 {
		t.Fatalf("counter %d after a cancelled round", st.bad)
	}
}

// TestProbeBounds: however many services fail, the round's lists and
// details stay within the schema's bounds.
func TestProbeBounds(t *testing.T) {
	probeNoLeaks(t)
	good := acceptor(t)
	dead := []string{refuser(t), refuser(t), refuser(t), refuser(t)}
	cfg := testProbe()
	cfg.Failures, cfg.PerRound = 1, 1024
	var services []string
	primary, fallback := map[string][]registries.Instance{}, map[string][]registries.Instance{}
	for i := range 40 {
		svc := fmt.Sprintf("service-with-a-long-name-%02d", i)
		services = append(services, svc)
		for j, addr := range dead {
			primary[svc] = append(primary[svc], at(svc, fmt.Sprintf("%s-instance-%d", svc, j), addr))
		}
		fallback[svc] = []registries.Instance{at(svc, svc+"-f", good)}
	}
	p := newProber(cfg)
	r := p.round(t.Context(), "consul", "zookeeper", services, primary, fallback)
	if len(r.Failing) != 40 || len(r.Primary) != schema.MaxHealthProbes || len(r.Fallback) != schema.MaxHealthProbes {
		t.Fatalf("failing %d, primary %d, fallback %d probes", len(r.Failing), len(r.Primary), len(r.Fallback))
	}
	if len(r.Detail) > schema.MaxDetail || !strings.HasPrefix(r.Detail, "consumer probe: service-with-a-long-name-00: 4 of 4") || !strings.Contains(r.Detail, "more") {
		t.Fatalf("detail (%d bytes) %q", len(r.Detail), r.Detail)
	}
	for _, e := range r.Primary {
		if e.Probed != 4 || len(e.Detail) > schema.MaxDetail {
			t.Fatalf("probe %+v", e)
		}
	}
}
