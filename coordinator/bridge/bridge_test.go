package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/registries/registrytest"
)

// running is a bridge started by a test, stopped at cleanup at the latest.
type running struct {
	*bridge.Bridge
	stop func()
}

func start(t *testing.T, src bridge.Source, dst bridge.Target, cfg bridge.Config) *running {
	t.Helper()
	b, err := bridge.New(src, dst, cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new bridge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge run: %v", err)
		}
	}
	t.Cleanup(stop)
	return &running{Bridge: b, stop: stop}
}

// mirrors returns the mirrors the bridge named name writes for src.
func mirrors(name, source string, src ...registries.Instance) []registries.Instance {
	var out []registries.Instance
	for _, in := range src {
		out = append(out, bridge.Mirror(in, name, source))
	}
	return out
}

// awaitParity waits until the bridge reports every service in sync.
func awaitParity(t *testing.T, b *bridge.Bridge) bridge.Report {
	t.Helper()
	var r bridge.Report
	registrytest.Eventually(t, registrytest.Patience, "parity", func() error {
		var err error
		if r, err = b.Parity(context.Background()); err != nil {
			return err
		}
		if !r.InSync() {
			return fmt.Errorf("not in sync: %+v", r)
		}
		return nil
	})
	return r
}

func register(t *testing.T, r registries.Registry, insts ...registries.Instance) {
	t.Helper()
	for _, in := range insts {
		if err := r.Register(context.Background(), in); err != nil {
			t.Fatalf("register %v: %v", in.Key(), err)
		}
	}
}

func memClient(t *testing.T, s *memory.Store) *memory.Client {
	c := memory.New(s, registrytest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBridgeMirrorsFollowsAndNeverLoops(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	p1, p2 := memClient(t, zk), memClient(t, zk)
	a1, a2, b1 := registrytest.Inst("orders", "a1", 8001), registrytest.Inst("orders", "a2", 8002), registrytest.Inst("billing", "b1", 9001)
	register(t, p1, a1, a2)
	register(t, p2, b1)
	moved := registrytest.Inst("billing", "b9", 9009) // a provider that registers in the new registry itself
	native := memClient(t, consul)
	register(t, native, moved)

	cfg := bridge.DefaultConfig()
	cfg.Name, cfg.SourceName = "fwd", "zk"
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	view := memClient(t, consul)
	fwd := start(t, memClient(t, zk), memClient(t, consul), cfg)
	registrytest.ResolvesTo(t, view, "orders", mirrors("fwd", "zk", a1, a2))
	registrytest.ResolvesTo(t, view, "billing", append(mirrors("fwd", "zk", b1), moved))

	// The reverse bridge mirrors what is native to the target back into
	// the source, but neither bridge mirrors the other's mirrors.
	rcfg := bridge.DefaultConfig()
	rcfg.Name, rcfg.SourceName = "rev", "consul"
	start(t, memClient(t, consul), memClient(t, zk), rcfg)
	zkView := memClient(t, zk)
	registrytest.ResolvesTo(t, zkView, "billing", append([]registries.Instance{b1}, mirrors("rev", "consul", moved)...))
	registrytest.ResolvesTo(t, zkView, "orders", []registries.Instance{a1, a2})
	registrytest.ResolvesTo(t, view, "billing", append(mirrors("fwd", "zk", b1), moved))

	// Incremental: a new provider, an update, and a provider that leaves.
	a3 := registrytest.Inst("orders", "a3", 8003)
	register(t, p2, a3)
	a1b := a1.Clone()
	a1b.Port = 8101
	register(t, p1, a1b)
	registrytest.ResolvesTo(t, view, "orders", mirrors("fwd", "zk", a1b, a2, a3))
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, view, "orders", mirrors("fwd", "zk", a1b, a2))
	registrytest.ResolvesTo(t, view, "billing", []registries.Instance{moved})

	// billing's only source provider left; the target still has the one
	// that registered there itself: extra, and left alone by the bridge.
	r, err := fwd.Parity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	orders, _ := r.Service("orders")
	billing, _ := r.Service("billing")
	if !orders.InSync() || len(orders.Same) != 2 || len(billing.Extra) != 1 || billing.Extra[0].ID != "b9" || len(billing.Missing) != 0 {
		t.Fatalf("parity %+v, want orders in sync and billing's b9 extra", r)
	}
	if n := testutil.ToFloat64(mustCounter(t, reg, "regshift_bridge_writes_total")); n < 5 {
		t.Fatalf("writes counted %v, want at least the 5 puts and deletes made", n)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return mustCounterWith(t, reg, name, "", "")
}

// mustCounterWith sums the counter's series whose label has value (all
// series when label is "").
func mustCounterWith(t *testing.T, reg *prometheus.Registry, name, label, value string) prometheus.Collector {
	t.Helper()
	sum, ok := counted(t, reg, name, label, value)
	if !ok {
		t.Fatalf("metric %s not registered", name)
	}
	total := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
	total.Add(sum)
	return total
}

// counted sums the counter's series whose label has value (all series when
// label is ""), and reports whether the counter has any series yet.
func counted(t testing.TB, reg *prometheus.Registry, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if label == "" || hasLabel(m.GetLabel(), label, value) {
				sum += m.GetCounter().GetValue()
			}
		}
		return sum, true
	}
	return 0, false
}

func TestBridgeRestartTakesOverAndCleansUp(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	p := memClient(t, zk)
	a, b := registrytest.Inst("orders", "a", 1), registrytest.Inst("orders", "b", 2)
	register(t, p, a, b)
	view := memClient(t, consul)
	cfg := bridge.DefaultConfig()
	target := memClient(t, consul)
	first := start(t, memClient(t, zk), target, cfg)
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a, b))
	first.stop()

	// While the bridge is down: b leaves, c arrives, and another bridge's
	// mirror appears in the target.
	if err := p.Deregister(context.Background(), "orders", "b"); err != nil {
		t.Fatal(err)
	}
	c := registrytest.Inst("orders", "c", 3)
	register(t, p, c)
	foreign := bridge.Mirror(registrytest.Inst("orders", "f", 4), "other-bridge", "zk")
	register(t, memClient(t, consul), foreign)

	second := start(t, memClient(t, zk), target, cfg)
	registrytest.ResolvesTo(t, view, "orders", append(mirrors(cfg.Name, cfg.SourceName, a, c), foreign))
	r, err := second.Parity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p0, _ := r.Service("orders")
	if len(p0.Same) != 2 || len(p0.Missing) != 0 || len(p0.Extra) != 1 || p0.Extra[0].ID != "f" {
		t.Fatalf("parity %+v, want a and c same, the foreign mirror extra", p0)
	}
}

func TestBridgeRetriesWhileSourceDown(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	register(t, memClient(t, zk), registrytest.Inst("orders", "a", 1))
	zk.SetDown(true)
	cfg := bridge.DefaultConfig()
	cfg.RetryInterval = 10 * time.Millisecond
	b := start(t, memClient(t, zk), memClient(t, consul), cfg)
	if _, err := b.Parity(context.Background()); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("parity while the source is down: %v, want ErrUnavailable", err)
	}
	zk.SetDown(false)
	awaitParity(t, b.Bridge)
}

// oddSource is a memory source that also lists a service whose name no
// registry adapter accepts, as a ZooKeeper written by other clients can.
type oddSource struct{ *memory.Client }

func (o oddSource) Services(ctx context.Context) ([]string, error) {
	names, err := o.Client.Services(ctx)
	return append(names, "bad name"), err
}

func TestBridgeSkipsWhatItCannotMirror(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	p := memClient(t, zk)
	ok := registrytest.Inst("orders", "ok", 1)
	full := registrytest.Inst("orders", "full", 2) // its mirror would exceed the metadata limit
	full.Metadata = map[string]string{}
	for i := range registries.MaxMetadataKeys {
		full.Metadata[fmt.Sprintf("k%d", i)] = "v"
	}
	register(t, p, ok, full)
	cfg := bridge.DefaultConfig()
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	b := start(t, oddSource{memClient(t, zk)}, memClient(t, consul), cfg)
	registrytest.ResolvesTo(t, memClient(t, consul), "orders", mirrors(cfg.Name, cfg.SourceName, ok))
	registrytest.Eventually(t, registrytest.Patience, "the refused mirror is counted", func() error {
		if n := testutil.ToFloat64(mustCounterWith(t, reg, "regshift_bridge_writes_total", "result", "error")); n < 1 {
			return fmt.Errorf("%v failed writes counted", n)
		}
		return nil
	})
	r, err := b.Parity(context.Background())
	if err != nil {
		t.Fatalf("parity with an odd source service: %v", err)
	}
	orders, _ := r.Service("orders")
	if len(orders.Missing) != 1 || orders.Missing[0].ID != "full" || len(orders.Same) != 1 {
		t.Fatalf("orders parity %+v, want ok same and full missing", orders)
	}
	if _, listed := r.Service("bad name"); listed {
		t.Fatal("an invalid service name was compared")
	}
}

func hasLabel(pairs []*dto.LabelPair, name, value string) bool {
	for _, p := range pairs {
		if p.GetName() == name && p.GetValue() == value {
			return true
		}
	}
	return false
}

// TestBridgeResyncRepairsDrift: a mirror removed from the target behind the
// bridge's back (no source change, so no watch fires) comes back with the
// periodic full resync.
func TestBridgeResyncRepairsDrift(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	a := registrytest.Inst("orders", "a", 1)
	register(t, memClient(t, zk), a)
	cfg := bridge.DefaultConfig()
	cfg.ResyncInterval = 50 * time.Millisecond
	start(t, memClient(t, zk), memClient(t, consul), cfg)
	view := memClient(t, consul)
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a))
	if err := view.Deregister(context.Background(), "orders", "a"); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a))
}

// TestBridgeRetriesSoonAfterTargetOutage: a change that could not be
// written because the target was down is retried after RetryInterval, not
// only at the next periodic resync.
func TestBridgeRetriesSoonAfterTargetOutage(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	p := memClient(t, zk)
	a, b := registrytest.Inst("orders", "a", 1), registrytest.Inst("orders", "b", 2)
	register(t, p, a)
	cfg := bridge.DefaultConfig()
	cfg.ResyncInterval = time.Hour
	cfg.RetryInterval = 10 * time.Millisecond
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	start(t, memClient(t, zk), memClient(t, consul), cfg)
	view := memClient(t, consul)
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a))

	consul.SetDown(true)
	register(t, p, b)
	registrytest.Eventually(t, registrytest.Patience, "the bridge failed to sync while the target was down", func() error {
		if n := testutil.ToFloat64(mustCounterWith(t, reg, "regshift_bridge_syncs_total", "result", "error")); n < 1 {
			return fmt.Errorf("%v failed syncs", n)
		}
		return nil
	})
	consul.SetDown(false)
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a, b))
}

// TestBridgeConvergence: the bridge has not converged while it cannot read
// the source, has once a full sync read everything, and a service that
// appears later — which only a full sync would find — is not converged on
// until the parity that found it brought the next full sync forward.
func TestBridgeConvergence(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	src := memClient(t, zk)
	register(t, src, registrytest.Inst("orders", "a", 1))
	zk.SetDown(true)
	cfg := bridge.DefaultConfig()
	cfg.RetryInterval, cfg.ResyncInterval = 10*time.Millisecond, time.Hour
	b := start(t, memClient(t, zk), memClient(t, consul), cfg)
	for range 5 {
		if b.Converged(nil) {
			t.Fatal("converged while the source cannot be read")
		}
		time.Sleep(20 * time.Millisecond)
	}
	zk.SetDown(false)
	if r := awaitParity(t, b.Bridge); !r.Converged {
		t.Fatalf("in sync but not converged: %+v", r)
	}

	register(t, src, registrytest.Inst("billing", "b", 2)) // no full sync due for an hour
	r, err := b.Parity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Service("billing"); r.Converged || len(p.Missing) != 1 {
		t.Fatalf("first parity with a new service: converged %v, billing %+v; want not converged, b missing", r.Converged, p)
	}
	registrytest.Eventually(t, registrytest.Patience, "converged on billing", func() error {
		r, err := b.Parity(context.Background())
		if err != nil {
			return err
		}
		if !r.Converged || !r.InSync() {
			return fmt.Errorf("converged %v, %+v", r.Converged, r.Services)
		}
		return nil
	})
}

// forgetting is a target that records what the bridge told it to forget.
type forgetting struct {
	*memory.Client
	forgot chan registries.Key
}

func (f forgetting) Forget(service, id string) {
	f.forgot <- registries.Key{Service: service, ID: id}
}

// TestBridgeForgetsWhatItsOwnerTookOver: where a registry has one place per
// key (ZooKeeper), a provider registering itself replaces the bridge's
// mirror. The bridge leaves the owner's registration alone and tells its
// client to stop restoring the mirror, so a session loss of the bridge
// cannot take the key back.
func TestBridgeForgetsWhatItsOwnerTookOver(t *testing.T) {
	zk, target := memory.NewStore(), memory.NewStore()
	a := registrytest.Inst("orders", "a", 1)
	a.Metadata[registries.MetaNode] = "p1"
	register(t, memClient(t, zk), a)
	cfg := bridge.DefaultConfig()
	cfg.ResyncInterval = 50 * time.Millisecond
	dst := forgetting{Client: memClient(t, target), forgot: make(chan registries.Key, 16)}
	start(t, memClient(t, zk), dst, cfg)
	view := memClient(t, target)
	registrytest.ResolvesTo(t, view, "orders", mirrors(cfg.Name, cfg.SourceName, a))
	owner := memClient(t, target)
	register(t, owner, a) // the provider activates the new registry: same key, its own data
	select {
	case k := <-dst.forgot:
		if k != a.Key() {
			t.Fatalf("forgot %v, want %v", k, a.Key())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge did not forget the key its owner took over")
	}
	registrytest.ResolvesTo(t, view, "orders", []registries.Instance{a})
}
