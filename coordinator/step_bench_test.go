package coordinator

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

func bigPlan(b *testing.B, nodes int) schema.Plan {
	p := testPlan(b)
	p.Nodes = nil
	for i := range nodes {
		role := schema.RoleProvider
		if i%2 == 1 {
			role = schema.RoleConsumer
		}
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: fmt.Sprintf("node-%05d", i), Roles: []string{role}})
	}
	p.Waves.MaxInFlight = 0
	return p
}

// BenchmarkFoldHealth measures events folded per second by the core on a
// 10,000-node rollout in its first wave (health reports, the most common
// event).
func BenchmarkFoldHealth(b *testing.B) {
	b.Run("canary-wave", func(b *testing.B) { benchFold(b, bigPlan(b, 10000)) })
	b.Run("one-5000-node-wave", func(b *testing.B) {
		p := bigPlan(b, 10000)
		p.Waves.Canary, p.Waves.Percentages = 0, []int{100}
		benchFold(b, p)
	})
}

func benchFold(b *testing.B, p schema.Plan) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r, _, err := NewRollout("ro", p, 1, now)
	if err != nil {
		b.Fatal(err)
	}
	Step(&r, RegistryIn{Now: now, Report: RegistryReport{At: now, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	ins := make([]Input, 1000)
	for i := range ins {
		ins[i] = HealthIn{Now: now, Health: schema.Health{NodeID: p.Nodes[i*7%len(p.Nodes)].NodeID,
			Interfaces: []schema.InterfaceHealth{{Name: "consul", State: "active", Status: schema.HealthPassing}}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Step(&r, ins[i%len(ins)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMemoryPerNode reports the heap a 10,000-node rollout holds, per node.
func BenchmarkMemoryPerNode(b *testing.B) {
	p := bigPlan(b, 10000)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, _, err := NewRollout("ro", p, 1, now)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(r.Nodes)), "bytes/node")
		runtime.KeepAlive(r)
	}
}

// BenchmarkDecisionLatency measures the core's time from a critical health
// report of one node of a 1,000-node wave to the output holding the
// switch-back commands (p50/p99 over the iterations).
func BenchmarkDecisionLatency(b *testing.B) {
	p := bigPlan(b, 2000)
	p.Waves.Canary, p.Waves.Percentages = 0, []int{100}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	base, _, err := NewRollout("ro", p, 1, now)
	if err != nil {
		b.Fatal(err)
	}
	Step(&base, RegistryIn{Now: now, Report: RegistryReport{At: now, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	victim := ""
	for i := range base.Nodes { // every provider installed and active
		if n := &base.Nodes[i]; n.Wave == 0 {
			n.Reached, n.ActiveAt, n.Touched, n.Pending = schema.ReachedActive, now, true, nil
			if victim == "" || n.ID < victim {
				victim = n.ID
			}
		}
	}
	critical := HealthIn{Now: now.Add(time.Second), Health: schema.Health{NodeID: victim,
		Interfaces: []schema.InterfaceHealth{{Name: "consul", State: "active", Status: schema.HealthCritical}}}}
	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		r := base.Clone()
		b.StartTimer()
		start := time.Now()
		out := Step(&r, critical)
		lat = append(lat, time.Since(start))
		if r.Phase != schema.PhaseSwitchingBack || len(out.Commands) == 0 || out.Commands[0].Kind != schema.CommandSwitchBack {
			b.Fatalf("no switch-back: phase %s, %d commands", r.Phase, len(out.Commands))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkWaveOfAcks folds a whole 50,000-node wave of a 100,000-node
// rollout: the install and activate acks of every node (100,000 acks), each
// letting the next command out. It reports the core's cost per ack, which
// must not grow with the fleet.
func BenchmarkWaveOfAcks(b *testing.B) {
	for _, nodes := range []int{10000, 100000} {
		b.Run(fmt.Sprint(nodes), func(b *testing.B) {
			p := bigPlan(b, nodes)
			p.Waves.Canary, p.Waves.Percentages, p.Waves.MaxInFlight = 0, []int{100}, 1000
			now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			acks := 0
			for b.Loop() {
				b.StopTimer()
				r, _, err := NewRollout("ro", p, 1, now)
				if err != nil {
					b.Fatal(err)
				}
				out := Step(&r, RegistryIn{Now: now, Report: RegistryReport{At: now, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
				queue := out.Commands
				b.StartTimer()
				for len(queue) > 0 {
					c := queue[0]
					queue = queue[1:]
					o := Step(&r, AckIn{Now: now, Ack: schema.Ack{NodeID: c.Node, CommandID: c.ID, RolloutID: "ro", Epoch: 1, Outcome: schema.AckDone}})
					queue = append(queue, o.Commands...)
					acks++
				}
				if r.d.unsettled != 0 {
					b.Fatalf("%d nodes of the wave unsettled", r.d.unsettled)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(acks), "ns/ack")
		})
	}
}
