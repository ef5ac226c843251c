package bridge_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/registries/registrytest"
)

// The coordinator's Consul mirror store is adopted, not rewritten, by a new
// leader's bridge.
var _ bridge.Durable = (*consul.Catalog)(nil)

// durableTarget is a memory target whose entries, like Consul catalog
// entries, outlive their writer.
type durableTarget struct{ *memory.Client }

func (durableTarget) Durable() bool { return true }

// TestBridgeAdoptsDurableMirrors: a bridge started anew over a Durable
// target — a new leader's — writes none of the exact mirrors it finds,
// rewrites one that differs from its source, and still removes one whose
// source left; over a target that is not Durable it writes them all again.
func TestBridgeAdoptsDurableMirrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		durable bool
		puts    float64
	}{{"durable", true, 1}, {"not durable", false, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			zk, consul := memory.NewStore(), memory.NewStore()
			src := memClient(t, zk)
			a, b, c, gone := registrytest.Inst("orders", "a", 1), registrytest.Inst("orders", "b", 2),
				registrytest.Inst("orders", "c", 3), registrytest.Inst("orders", "gone", 4)
			register(t, src, a, b, c, gone)
			cfg := bridge.DefaultConfig()
			first := start(t, memClient(t, zk), memClient(t, consul), cfg)
			awaitParity(t, first.Bridge)
			first.stop()

			// While no bridge runs: gone leaves, c moves to another port.
			if err := src.Deregister(context.Background(), "orders", "gone"); err != nil {
				t.Fatal(err)
			}
			c.Port = 33
			register(t, src, c)

			reg := prometheus.NewRegistry()
			cfg.Metrics = reg
			var target bridge.Target = memClient(t, consul)
			if tc.durable {
				target = durableTarget{memClient(t, consul)}
			}
			second := start(t, memClient(t, zk), target, cfg)
			awaitParity(t, second.Bridge)
			registrytest.ResolvesTo(t, memClient(t, consul), "orders", mirrors(cfg.Name, cfg.SourceName, a, b, c))
			second.stop()
			puts := mustCounterWith(t, reg, "regshift_bridge_writes_total", "op", "put")
			if got := testutil.ToFloat64(puts); got != tc.puts {
				t.Fatalf("the second bridge put %v mirrors, want %v", got, tc.puts)
			}
		})
	}
}

// TestBridgeCleanRemovesOnlyItsOwn: Clean removes the mirrors of this
// bridge's name, in every service, and leaves another bridge's (another
// rollout's) mirrors and direct registrations alone.
func TestBridgeCleanRemovesOnlyItsOwn(t *testing.T) {
	zk, consul := memory.NewStore(), memory.NewStore()
	a, b := registrytest.Inst("orders", "a", 1), registrytest.Inst("billing", "b", 2)
	register(t, memClient(t, zk), a, b)
	other := bridge.Mirror(registrytest.Inst("orders", "o", 3), "regshift-bridge/ro-2", "zk")
	direct := registrytest.Inst("orders", "d", 4)
	register(t, memClient(t, consul), other, direct)
	cfg := bridge.DefaultConfig()
	cfg.Name = "regshift-bridge/ro-1"
	br := start(t, memClient(t, zk), memClient(t, consul), cfg)
	view := memClient(t, consul)
	registrytest.ResolvesTo(t, view, "billing", mirrors(cfg.Name, cfg.SourceName, b))
	registrytest.ResolvesTo(t, view, "orders", append(mirrors(cfg.Name, cfg.SourceName, a), direct, other))
	br.stop()
	n, err := br.Clean(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("clean: %d, %v; want 2 removed", n, err)
	}
	registrytest.ResolvesTo(t, view, "orders", []registries.Instance{direct, other})
	registrytest.ResolvesTo(t, view, "billing", nil)
}
