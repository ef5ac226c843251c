package bridge_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

// mirrorNode returns a Consul catalog node of the test's own and a raw SDK
// client; the node and every entry on it are removed at cleanup.
func (s realServers) mirrorNode(t testing.TB) (string, *api.Client) {
	t.Helper()
	cfg := api.DefaultNonPooledConfig() // no keep-alive: nothing idle outlives the test
	cfg.Address = s.consulAddr
	raw, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	node := registrytest.Unique("regshift-mirrors")
	t.Cleanup(func() {
		if _, err := raw.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, nil); err != nil {
			t.Errorf("remove mirror node %s: %v", node, err)
		}
	})
	return node, raw
}

// catalog returns a Consul mirror store writing on node: a bridge's target.
func (s realServers) catalog(t testing.TB, node string) *consul.Catalog {
	t.Helper()
	cfg := consul.DefaultCatalogConfig()
	cfg.Address, cfg.Node = s.consulAddr, node
	c, err := consul.NewCatalog(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestBridgeCatalogAtScale mirrors 10,000 ZooKeeper instances over 20
// services into Consul's catalog: parity is reached; it then holds, every
// mirror passing and no write made, for longer than three TTLs of the agent
// client's checks (catalog entries have nothing to decay); 100 instances
// leave the source and their mirrors leave the target; and a new bridge
// with a new Catalog on the same node (a new leader) converges without one
// duplicate entry. Durations are logged, never asserted.
func TestBridgeCatalogAtScale(t *testing.T) {
	const services, perService, leaving = 20, 500, 100
	const remaining = perService - leaving/services
	s := needReal(t)
	ctx := registrytest.Ctx(t)
	node, raw := s.mirrorNode(t)
	prefix := registrytest.Unique("scale")
	var names []string
	var all []registries.Instance
	for i := range services {
		svc := fmt.Sprintf("%s-%02d", prefix, i)
		names = append(names, svc)
		for j := range perService {
			all = append(all, registrytest.Inst(svc, fmt.Sprintf("i%03d", j), 10000+j))
		}
	}
	provider := s.zk(t)
	began := time.Now()
	registrytest.Parallel(t, all, func(in registries.Instance) error { return provider.Register(ctx, in) })
	t.Logf("registered %d instances in ZooKeeper in %v", len(all), time.Since(began).Round(time.Millisecond))

	cfg := bridge.DefaultConfig()
	cfg.Name = registrytest.Unique("scale-bridge")
	cfg.ResyncInterval = 20 * time.Second // full resyncs run in the quiet window
	cfg.Include = func(service string) bool { return strings.HasPrefix(service, prefix) }
	metrics := prometheus.NewRegistry()
	cfg.Metrics = metrics
	source, target := s.zk(t), s.catalog(t, node)
	began = time.Now()
	first := start(t, source, target, cfg)
	// Wait on the bridge's metrics, which costs nothing, then check: polling
	// parity meanwhile would compete with the bridge for the two cores.
	awaitFullSync(t, metrics, 3*time.Minute)
	t.Logf("first full sync done after %v (%v puts)", time.Since(began).Round(time.Millisecond), puts(t, metrics))
	awaitConverged(t, source, target, names, perService, time.Minute)
	t.Logf("parity of %d mirrors after %v", len(all), time.Since(began).Round(time.Millisecond))

	// Quiet: parity holds, every mirror is passing, nothing is written,
	// while full resyncs run.
	window := 3*consul.DefaultConfig().CheckTTL + 5*time.Second
	putsBefore, resyncsBefore := puts(t, metrics), fullSyncs(t, metrics)
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(2 * time.Second) {
		for _, svc := range names {
			if err := converged(source, target, svc, perService); err != nil {
				t.Fatalf("parity lost in the quiet window: %v", err)
			}
		}
		if err := allPassing(raw, names, perService); err != nil {
			t.Fatalf("in the quiet window: %v", err)
		}
	}
	if n := puts(t, metrics) - putsBefore; n != 0 {
		t.Errorf("the bridge made %v puts in a quiet window of %v, want none", n, window)
	}
	t.Logf("quiet for %v: parity held, every mirror passing, no write in %v full resyncs", window, fullSyncs(t, metrics)-resyncsBefore)

	// 100 instances leave the source, 5 of each service.
	var gone []registries.Key
	for _, svc := range names {
		for j := range leaving / services {
			gone = append(gone, registries.Key{Service: svc, ID: fmt.Sprintf("i%03d", j)})
		}
	}
	began = time.Now()
	for _, k := range gone {
		if err := provider.Deregister(ctx, k.Service, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	awaitConverged(t, source, target, names, remaining, 2*time.Minute)
	t.Logf("%d source instances left the target %v after their deregistrations began", len(gone), time.Since(began).Round(time.Millisecond))

	// A new leader: a new bridge with a new Catalog on the same node.
	first.stop()
	metrics2 := prometheus.NewRegistry()
	cfg.Metrics = metrics2
	target = s.catalog(t, node)
	began = time.Now()
	start(t, source, target, cfg)
	awaitFullSync(t, metrics2, 3*time.Minute)
	t.Logf("a new bridge's first full sync done after %v (%v upserts of its predecessor's mirrors)",
		time.Since(began).Round(time.Millisecond), puts(t, metrics2))
	awaitConverged(t, source, target, names, remaining, time.Minute)
	for _, svc := range names {
		es, _, err := raw.Catalog().Service(svc, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range es {
			count[e.ServiceID]++
		}
		if len(count) != remaining {
			t.Errorf("%s: %d service IDs in the catalog, want %d", svc, len(count), remaining)
		}
		for id, n := range count {
			if n != 1 {
				t.Errorf("%s: %d entries across nodes, want 1", id, n)
			}
		}
	}
}

// allPassing checks that every service of names has n entries in Consul's
// health view (passing or not), all passing.
func allPassing(raw *api.Client, names []string, n int) error {
	for _, svc := range names {
		es, _, err := raw.Health().Service(svc, "", false, nil)
		if err != nil {
			return err
		}
		if len(es) != n {
			return fmt.Errorf("%s: %d health entries, want %d", svc, len(es), n)
		}
		for _, e := range es {
			if st := e.Checks.AggregatedStatus(); st != api.HealthPassing {
				return fmt.Errorf("%s is %s", e.Service.ID, st)
			}
		}
	}
	return nil
}

// puts counts the bridge's puts so far.
func puts(t testing.TB, reg *prometheus.Registry) float64 {
	n, _ := counted(t, reg, "regshift_bridge_writes_total", "op", "put")
	return n
}

// fullSyncs counts the bridge's full syncs so far.
func fullSyncs(t testing.TB, reg *prometheus.Registry) float64 {
	n, _ := counted(t, reg, "regshift_bridge_syncs_total", "kind", "full")
	return n
}

// awaitFullSync waits until the bridge completed a full sync.
func awaitFullSync(t testing.TB, reg *prometheus.Registry, within time.Duration) {
	t.Helper()
	registrytest.Eventually(t, within, "a full sync", func() error {
		if fullSyncs(t, reg) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
}
