package coordinator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// graceRollout is a rollout of plan p whose first wave's nodes have all
// been activated at t0+2s; it returns the rollout and the first wave's
// node ids.
func graceRollout(t *testing.T, p schema.Plan) (*Rollout, []string) {
	t.Helper()
	r, _, err := NewRollout("r1", p, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	Step(&r, RegistryIn{Now: t0, Report: RegistryReport{At: t0, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	if r.Phase != schema.PhaseRolling {
		t.Fatalf("phase %s, want rolling", r.Phase)
	}
	var ids []string
	for _, n := range r.WaveNodes(0) {
		ids = append(ids, n.ID)
	}
	for _, kind := range []schema.CommandKind{schema.CommandInstall, schema.CommandActivate} {
		for _, id := range ids {
			now := t0.Add(time.Second)
			if kind == schema.CommandActivate {
				now = t0.Add(2 * time.Second)
			}
			Step(&r, AckIn{Now: now, Ack: schema.Ack{NodeID: id, RolloutID: r.ID, Epoch: 1, Outcome: schema.AckDone,
				CommandID: CommandID(r.ID, id, kind)}})
		}
	}
	for _, id := range ids {
		if n := r.Node(id); n.Reached != schema.ReachedActive {
			t.Fatalf("%s reached %s, want active", id, n.Reached)
		}
	}
	return &r, ids
}

func report(r *Rollout, at time.Time, id string, status schema.HealthStatus, detail string) Output {
	return Step(r, HealthIn{Now: at, Health: schema.Health{NodeID: id, ObservedAt: at,
		Interfaces: []schema.InterfaceHealth{{Name: r.Plan.To.Name, State: schema.StateActive, Status: status, Detail: detail}}}})
}

func switchBack(r *Rollout) *Decision {
	for i, d := range r.Decisions {
		if d.Decision == schema.DecisionSwitchBack {
			return &r.Decisions[i]
		}
	}
	return nil
}

// TestActivationGrace: a critical report within the grace does not fail a
// node; the first one after it does; a node that stays critical fails at
// the grace's end plus one tick, with no further report.
func TestActivationGrace(t *testing.T) {
	activated := t0.Add(2 * time.Second)
	t.Run("critical within the grace, then passing", func(t *testing.T) {
		r, ids := graceRollout(t, testPlan(t))
		report(r, activated.Add(time.Second), ids[0], schema.HealthCritical, "registrations missing: 1 of 1")
		Step(r, Tick{Now: activated.Add(5 * time.Second)})
		report(r, activated.Add(6*time.Second), ids[0], schema.HealthPassing, "")
		for s := 7; s < 40; s++ {
			at := activated.Add(time.Duration(s) * time.Second)
			Step(r, RegistryIn{Now: at, Report: RegistryReport{At: at, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
		}
		if d := switchBack(r); d != nil || r.Phase != schema.PhaseRolling || r.Wave == 0 {
			t.Fatalf("phase %s wave %d, switch-back %+v: want the canary passed", r.Phase, r.Wave, d)
		}
	})
	t.Run("critical after the grace fails at once", func(t *testing.T) {
		r, ids := graceRollout(t, testPlan(t))
		report(r, activated.Add(time.Second), ids[0], schema.HealthPassing, "")
		report(r, activated.Add(10*time.Second), ids[0], schema.HealthCritical, "registrations missing: 1 of 1")
		d := switchBack(r)
		if d == nil || d.Check != schema.CheckFailureBudget || !strings.Contains(d.Detail, ids[0]+": critical (registrations missing: 1 of 1)") {
			t.Fatalf("switch-back %+v, want failure-budget naming %s critical with its detail", d, ids[0])
		}
	})
	t.Run("never passing fails at the grace end plus one tick", func(t *testing.T) {
		r, ids := graceRollout(t, testPlan(t))
		report(r, activated.Add(time.Second), ids[0], schema.HealthCritical, "registrations missing: 1 of 1")
		Step(r, Tick{Now: activated.Add(9 * time.Second)})
		if d := switchBack(r); d != nil {
			t.Fatalf("failed within the grace: %+v", d)
		}
		Step(r, Tick{Now: activated.Add(10 * time.Second)})
		if d := switchBack(r); d == nil || d.At != activated.Add(10*time.Second) || d.Check != schema.CheckFailureBudget {
			t.Fatalf("switch-back %+v, want failure-budget at the grace's end", d)
		}
	})
	t.Run("a grace of 0 judges the first report", func(t *testing.T) {
		p := testPlan(t)
		p.Gates.ActivationGraceSeconds = new(0)
		r, ids := graceRollout(t, p)
		report(r, activated, ids[0], schema.HealthCritical, "registrations missing: 1 of 1")
		if d := switchBack(r); d == nil {
			t.Fatal("a critical report with no grace did not fail the node")
		}
	})
	t.Run("a report taken before the activation is not judged", func(t *testing.T) {
		p := testPlan(t)
		p.Gates.ActivationGraceSeconds = new(0)
		r, ids := graceRollout(t, p)
		Step(r, HealthIn{Now: activated, Health: schema.Health{NodeID: ids[0], ObservedAt: activated.Add(-time.Second),
			Interfaces: []schema.InterfaceHealth{{Name: r.Plan.To.Name, State: schema.StateStandby, Status: schema.HealthCritical}}}})
		Step(r, Tick{Now: activated.Add(time.Second)})
		if d := switchBack(r); d != nil {
			t.Fatalf("judged on a report older than the activation: %+v", d)
		}
	})
}

// TestFailureReasonsBounded: a decision on 1,000 failed nodes names each
// listed node's reason — its health and detail, or its ack — and says how
// many more there are, within MaxDetail.
func TestFailureReasonsBounded(t *testing.T) {
	p := testPlan(t)
	p.Nodes = nil
	for i := range 1000 {
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: fmt.Sprintf("n%04d", i), Roles: []string{schema.RoleProvider}})
	}
	p.Waves = schema.Waves{Canary: 1000, Percentages: []int{100}, MaxInFlight: 1000}
	p.Gates.FailureBudget = 999
	r, ids := graceRollout(t, p)
	if len(ids) != 1000 {
		t.Fatalf("canary of %d nodes, want 1000", len(ids))
	}
	after := t0.Add(20 * time.Second)
	for _, id := range ids[:999] {
		report(r, after, id, schema.HealthCritical, "registrations missing: orders/"+id)
	}
	if d := switchBack(r); d != nil {
		t.Fatalf("switched back within the budget: %+v", d)
	}
	report(r, after, ids[999], schema.HealthCritical, "registrations missing: orders/"+ids[999])
	d := switchBack(r)
	if d == nil {
		t.Fatal("no switch-back over the budget")
	}
	if len(d.Detail) > schema.MaxDetail || len(d.Nodes) > schema.MaxDecisionNodes || d.NodeCount != 1000 {
		t.Fatalf("unbounded decision: detail %d bytes, %d nodes, count %d", len(d.Detail), len(d.Nodes), d.NodeCount)
	}
	if !strings.Contains(d.Detail, "n0000: critical (registrations missing: orders/n0000); n0001: critical") ||
		!strings.Contains(d.Detail, " more") {
		t.Fatalf("detail lacks the reasons or the count left out: %s", d.Detail)
	}
	t.Log(d.Detail)
}

// TestAckReasons: a node that never answered and one whose ack failed are
// listed with why.
func TestAckReasons(t *testing.T) {
	p := testPlan(t)
	p.Waves.Canary = 2
	p.Gates.FailureBudget = 1
	r, _, err := NewRollout("r1", p, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	Step(&r, RegistryIn{Now: t0, Report: RegistryReport{At: t0, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	ids := []string{r.WaveNodes(0)[0].ID, r.WaveNodes(0)[1].ID}
	Step(&r, AckIn{Now: t0.Add(time.Second), Ack: schema.Ack{NodeID: ids[0], RolloutID: r.ID, Epoch: 1, Outcome: schema.AckFailed,
		Reason: "fetch: 404", CommandID: CommandID(r.ID, ids[0], schema.CommandInstall)}})
	Step(&r, Tick{Now: t0.Add(31 * time.Second)})
	d := switchBack(&r)
	if d == nil {
		t.Fatal("no switch-back")
	}
	want := fmt.Sprintf("%s: install failed: fetch: 404; %s: install: no answer within 30s", ids[0], ids[1])
	if !strings.Contains(d.Detail, want) {
		t.Fatalf("detail %q lacks %q", d.Detail, want)
	}
}
