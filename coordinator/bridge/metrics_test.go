package bridge

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsPerRollout: bridges of two rollouts register their metrics
// side by side (the coordinator labels each with its rollout), and a
// bridge started again for a rollout counts on in the same series instead
// of failing to register.
func TestMetricsPerRollout(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrap := func(id string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"rollout": id}, reg)
	}
	a, err := newMetrics(wrap("ro-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(wrap("ro-b")); err != nil {
		t.Fatalf("a second rollout's bridge: %v", err)
	}
	a.syncs.WithLabelValues("full", "ok").Inc()
	again, err := newMetrics(wrap("ro-a"))
	if err != nil {
		t.Fatalf("ro-a's bridge started again: %v", err)
	}
	again.syncs.WithLabelValues("full", "ok").Inc()
	if got := testutil.ToFloat64(a.syncs.WithLabelValues("full", "ok")); got != 2 {
		t.Fatalf("ro-a's full syncs: %v, want 2 (one series across restarts)", got)
	}
	if n := testutil.CollectAndCount(reg, "regshift_bridge_services_in_sync"); n != 2 {
		t.Fatalf("%d services_in_sync series, want one per rollout", n)
	}
}
