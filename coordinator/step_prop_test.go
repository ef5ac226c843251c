package coordinator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/regshift/regshift/schema"
)

func genPlan(t *rapid.T, base schema.Plan) schema.Plan {
	p := base
	n := rapid.IntRange(1, 7).Draw(t, "nodes")
	p.Nodes = nil
	for i := range n {
		roles := rapid.SampledFrom([][]string{{"provider"}, {"consumer"}, {"provider", "consumer"}}).Draw(t, fmt.Sprint("roles", i))
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: fmt.Sprintf("n%d", i), Roles: roles})
	}
	p.Waves.Canary = rapid.IntRange(0, 2).Draw(t, "canary")
	p.Waves.Percentages = rapid.SampledFrom([][]int{{100}, {50, 100}, {10, 60, 100}}).Draw(t, "pct")
	p.Waves.MaxInFlight = rapid.IntRange(1, 3).Draw(t, "inflight")
	p.Gates.AckTimeoutSeconds = rapid.IntRange(schema.PlanMinAckTimeoutSeconds, 30).Draw(t, "acktimeout")
	p.Gates.SoakSeconds = rapid.IntRange(0, 5).Draw(t, "soak")
	p.Gates.FailureBudget = rapid.IntRange(0, 2).Draw(t, "budget")
	p.Gates.MinHealthyRatio = rapid.SampledFrom([]float64{0.5, 1}).Draw(t, "ratio")
	p.Gates.OnFailure = rapid.SampledFrom([]string{OnFailureSwitchBack, OnFailurePause}).Draw(t, "onfailure")
	p.Finalize = rapid.SampledFrom([]string{FinalizeManual, FinalizeAutomatic}).Draw(t, "finalize")
	return p
}

// TestRolloutInvariants drives random plans through random interleavings of
// command deliveries, reordered, duplicated and lost events, health and
// registry changes, clock jumps, agent restarts and operator requests. The
// sim checks on every step that the old interface is never uninstalled
// before every node was healthy and finalize was approved or automatic, that
// one intent always has one command id, and that no agent ever lacks an
// active interface; at the end, a switched-back rollout has no node on the
// new interface.
func TestRolloutInvariants(t *testing.T) {
	base := testPlan(t)
	rapid.Check(t, func(rt *rapid.T) { randomRun(rt, base, false) })
}

// TestFailoverFromTheRecord runs the same random rollouts and checks every
// step against a replica that starts from the persisted state record
// (sim.checkFailover): the record is the whole state, and Step changes only
// the rollout it is given.
func TestFailoverFromTheRecord(t *testing.T) {
	base := testPlan(t)
	rapid.Check(t, func(rt *rapid.T) { randomRun(rt, base, true) })
}

func randomRun(rt *rapid.T, base schema.Plan, failover bool) {
	p := genPlan(rt, base)
	s := newSim(rt, p)
	s.failover = failover
	nodes := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		nodes[i] = n.NodeID
	}
	steps := rapid.IntRange(20, 400).Draw(rt, "steps")
	for i := range steps {
		switch rapid.IntRange(0, 14).Draw(rt, fmt.Sprint("action", i)) {
		case 0, 1, 2: // an agent reads its next command
			s.deliver(rapid.SampledFrom(nodes).Draw(rt, "node"))
		case 3, 4: // one event reaches the coordinator, maybe out of order, maybe twice
			if len(s.events) == 0 {
				continue
			}
			j := rapid.IntRange(0, len(s.events)-1).Draw(rt, "event")
			e := s.events[j]
			if !rapid.Bool().Draw(rt, "duplicate") {
				s.events = slices.Delete(s.events, j, j+1)
			}
			s.step(s.stamp(e))
		case 5: // an event is lost (an agent died before its ack left)
			if len(s.events) > 0 {
				j := rapid.IntRange(0, len(s.events)-1).Draw(rt, "lost")
				s.events = slices.Delete(s.events, j, j+1)
			}
		case 6:
			s.health(rapid.SampledFrom(nodes).Draw(rt, "healthNode"))
		case 7:
			s.events = append(s.events, s.registry())
		case 8:
			s.newHealthy = rapid.Float64Range(0, 1).Draw(rt, "healthy") > 0.2
			s.parity = rapid.SampledFrom([]float64{1, 1, 0.5}).Draw(rt, "parity")
		case 9:
			s.now = s.now.Add(time.Duration(rapid.IntRange(0, 10).Draw(rt, "secs")) * time.Second)
			s.step(Tick{Now: s.now})
		case 10: // an agent restarts and says hello
			id := rapid.SampledFrom(nodes).Draw(rt, "helloNode")
			st := s.agents[id]
			var ifs []schema.InterfaceState
			for _, name := range st.Names() {
				ifs = append(ifs, schema.InterfaceState{Name: name, State: st.Phase(name)})
			}
			s.events = append(s.events, HelloIn{Hello: schema.Hello{NodeID: id, Interfaces: ifs}})
		case 11:
			kind := rapid.SampledFrom([]schema.RequestKind{schema.RequestPause, schema.RequestResume, schema.RequestApprove, schema.RequestAbort, schema.RequestFinalize}).Draw(rt, "request")
			s.step(s.stamp(RequestIn{Kind: kind, By: "prop"}))
		case 12, 13: // everything delivered in order: progress
			s.round(time.Second)
		case 14: // an agent's effects fail
			s.deliverAs(rapid.SampledFrom(nodes).Draw(rt, "failNode"), true)
		}
	}
	if s.r.Phase == schema.PhaseSwitchedBack {
		for _, n := range nodes {
			for s.deliver(n) {
			}
		}
		for id, primary := range s.primaries() {
			if primary != p.From.Name {
				rt.Fatalf("switched back, yet %s has %s primary\n%s", id, primary, s.decisions())
			}
		}
	}
}

// TestRolloutCompletesWithoutFaults: with every message delivered and the
// new registry healthy, any plan reaches its end.
func TestRolloutCompletesWithoutFaults(t *testing.T) {
	base := testPlan(t)
	rapid.Check(t, func(rt *rapid.T) {
		p := genPlan(rt, base)
		s := newSim(rt, p)
		for i := 0; i < 1000 && !s.r.Phase.Ended(); i++ {
			if s.r.Phase == schema.PhaseCommitted && !s.finalizeReq {
				s.step(s.stamp(RequestIn{Kind: schema.RequestFinalize, By: "prop"}))
			}
			s.round(time.Second)
		}
		if s.r.Phase != schema.PhaseFinalized {
			rt.Fatalf("ended %s\n%s", s.r.Phase, s.decisions())
		}
	})
}
