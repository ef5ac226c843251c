package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// BenchmarkStreamUpdate is the hub's cost of one published view of a
// rollout of N nodes, 1 % of them changed (a wave's acks arriving), with a
// page following it: diff every node, encode the changed rows, the head
// and the summary, queue them. It runs on the hub's goroutine, never the
// owner's. The raw floor beside it: Clone, which the owner already pays
// for each changed rollout in every view.
func BenchmarkStreamUpdate(b *testing.B) {
	pkg := schema.Package{URL: "http://127.0.0.1:7080/packages/x.tgz", Digest: "sha256:" + fmt.Sprintf("%064d", 0)}
	for _, n := range []int{1000, 10000, 100000} {
		plan := schema.Plan{
			From:     schema.Interface{Name: "zookeeper", Kind: "zookeeper", Address: "127.0.0.1:2181", Package: pkg},
			To:       schema.Interface{Name: "consul", Kind: "consul", Address: "127.0.0.1:8500", Package: pkg},
			Waves:    schema.Waves{Canary: 1, Percentages: []int{10, 50, 100}, MaxInFlight: n},
			Gates:    schema.Gates{AckTimeoutSeconds: 60, SoakSeconds: 1, MinHealthyRatio: 1, MinParity: 0.99, OnFailure: "switch-back"},
			Finalize: "automatic",
		}
		for i := range n {
			plan.Nodes = append(plan.Nodes, schema.PlanNode{NodeID: fmt.Sprintf("node-%06d", i), Roles: []string{schema.RoleProvider}})
		}
		r, _, err := coordinator.NewRollout("ro-bench", plan, 1, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		m, err := newMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		s := &Server{m: m}
		s.status.Store(&Health{Replica: "bench", Leader: true})
		s.hub = newHub(s)
		views := [2]*view{}
		for k := range views {
			c := r.Clone()
			for i := k; i < n; i += 100 { // 1 % of the nodes differ between the two views
				c.Nodes[i].Reached = schema.ReachedActive
			}
			views[k] = &view{ids: []string{"ro-bench"}, rollouts: map[string]*rolloutView{"ro-bench": {rollout: c, summary: summarize(&c)}}}
		}
		s.view.Store(views[0])
		sub, err := s.hub.subscribe("ro-bench")
		if err != nil {
			b.Fatal(err)
		}
		drain := func() {
			for len(sub.ch) > 0 {
				<-sub.ch
			}
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				v := views[(i+1)%2]
				// A new pointer, as the owner publishes: the hub diffs it.
				s.view.Store(&view{ids: v.ids, rollouts: map[string]*rolloutView{"ro-bench": {rollout: v.rollouts["ro-bench"].rollout, summary: v.rollouts["ro-bench"].summary}}})
				s.hub.update()
				drain()
			}
		})
		b.Run(fmt.Sprintf("floor-clone/nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_ = r.Clone()
			}
		})
	}
}
