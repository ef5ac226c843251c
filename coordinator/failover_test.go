package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

func registryIn(at time.Time, converged bool, parity float64) RegistryIn {
	return RegistryIn{Now: at, Report: RegistryReport{At: at, Reachable: true, Healthy: true, BridgeRunning: true,
		BridgeConverged: converged, Parity: parity}}
}

func passed(r *Rollout) bool {
	for _, d := range r.Decisions {
		if d.Decision == schema.DecisionWavePassed {
			return true
		}
	}
	return false
}

// soaking is graceRollout's rollout with its canary passing and soaking
// since t0+3s; it returns the rollout and when the soak ends.
func soaking(t *testing.T) (*Rollout, time.Time) {
	t.Helper()
	r, ids := graceRollout(t, testPlan(t))
	for _, id := range ids {
		report(r, t0.Add(3*time.Second), id, schema.HealthPassing, "")
	}
	Step(r, Tick{Now: t0.Add(3 * time.Second)})
	if r.SoakStarted.IsZero() {
		t.Fatal("the canary is not soaking")
	}
	return r, r.SoakStarted.Add(time.Duration(r.Plan.Gates.SoakSeconds) * time.Second)
}

// TestFailoverIsNotEvidence: after a leader change, the last leader's
// registry report judges nothing, and neither does a report of a bridge
// that has not converged — however low its parity — until the ack timeout
// from the takeover has passed; then the gate fails naming the bridge.
func TestFailoverIsNotEvidence(t *testing.T) {
	t.Run("the last leader's report is not evidence", func(t *testing.T) {
		r, soakEnd := soaking(t)
		Step(r, registryIn(soakEnd.Add(-time.Second), true, 1)) // the old leader's, taken during the soak
		r.Adopt(2, soakEnd.Add(-time.Second/2))
		Step(r, Tick{Now: soakEnd.Add(time.Second)})
		if passed(r) {
			t.Fatal("the wave passed on the previous leader's registry report")
		}
		Step(r, registryIn(soakEnd.Add(2*time.Second), true, 1))
		if !passed(r) || r.Wave != 1 {
			t.Fatalf("wave %d, decisions %s: want the canary passed on this leader's report", r.Wave, decisionNames(*r))
		}
	})
	t.Run("an unconverged bridge's low parity is waited out", func(t *testing.T) {
		r, soakEnd := soaking(t)
		takeover := soakEnd.Add(time.Minute) // long after the soak: the old wait would be over
		r.Adopt(2, takeover)
		for s := 1; s < 29; s++ {
			Step(r, registryIn(takeover.Add(time.Duration(s)*time.Second), false, 0.33))
		}
		if switchBack(r) != nil || passed(r) {
			t.Fatalf("decisions %s: want neither a switch-back nor a pass while the bridge converges", decisionNames(*r))
		}
		Step(r, registryIn(takeover.Add(29*time.Second), true, 1))
		if !passed(r) || switchBack(r) != nil {
			t.Fatalf("decisions %s: want the canary passed once the bridge converged", decisionNames(*r))
		}
	})
	t.Run("a bridge that never converges fails the gate by name", func(t *testing.T) {
		r, soakEnd := soaking(t)
		takeover := soakEnd.Add(time.Minute)
		r.Adopt(2, takeover)
		for s := 1; s <= 31; s++ {
			Step(r, registryIn(takeover.Add(time.Duration(s)*time.Second), false, 0.33))
		}
		d := switchBack(r)
		if d == nil {
			t.Fatalf("decisions %s: want a switch-back after the ack timeout", decisionNames(*r))
		}
		if d.Check != schema.CheckBridge || !strings.Contains(d.Detail, "not converged") {
			t.Fatalf("switch-back %+v: want the bridge named as the cause", d)
		}
	})
	t.Run("a converged bridge's shortfall fails at once", func(t *testing.T) {
		r, soakEnd := soaking(t)
		Step(r, registryIn(soakEnd.Add(time.Second), true, 0.5))
		d := switchBack(r)
		if d == nil || d.Check != schema.CheckParity || d.Observed == nil || *d.Observed != 0.5 {
			t.Fatalf("switch-back %+v: want the parity gate failed on 0.5", d)
		}
	})
}

// TestPrepareWaitsForConvergence: prepare needs a converged report of this
// leader; after a takeover it is given the ack timeout again.
func TestPrepareWaitsForConvergence(t *testing.T) {
	r, _, err := NewRollout("r1", testPlan(t), 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	Step(&r, registryIn(t0.Add(time.Second), false, 0))
	if r.Phase != schema.PhasePreparing {
		t.Fatalf("phase %s: prepared on an unconverged bridge", r.Phase)
	}
	r.Adopt(2, t0.Add(25*time.Second))
	Step(&r, registryIn(t0.Add(40*time.Second), false, 0)) // past the ack timeout from creation, not from the takeover
	if r.Phase != schema.PhasePreparing {
		t.Fatalf("phase %s, decisions %s: want still preparing", r.Phase, decisionNames(r))
	}
	Step(&r, registryIn(t0.Add(41*time.Second), true, 1))
	if r.Phase != schema.PhaseRolling {
		t.Fatalf("phase %s, decisions %s: want rolling", r.Phase, decisionNames(r))
	}
}

// TestTakeoverRestartsTheAckTimeout: a new leader has read no ack and no
// health report yet (health is not persisted), and nothing was counted
// while no coordinator ran: a command sent just before the old leader died
// and a node that has not reported to this leader get the ack timeout again
// from the takeover — the two false switch-backs the kill loop found.
func TestTakeoverRestartsTheAckTimeout(t *testing.T) {
	t.Run("a node's health", func(t *testing.T) {
		r, soakEnd := soaking(t)
		for i := range r.Nodes {
			r.Nodes[i].Health, r.Nodes[i].HealthAt = "", time.Time{} // as FromRecords leaves them
		}
		takeover := soakEnd.Add(time.Minute) // long past the activation's ack timeout
		r.Adopt(2, takeover)
		for s := 1; s < 29; s++ {
			Step(r, registryIn(takeover.Add(time.Duration(s)*time.Second), true, 1))
		}
		if switchBack(r) != nil || passed(r) {
			t.Fatalf("decisions %s: want the gate waiting for the node's first report to this leader", decisionNames(*r))
		}
		for _, n := range r.WaveNodes(0) {
			report(r, takeover.Add(29*time.Second), n.ID, schema.HealthPassing, "")
		}
		Step(r, registryIn(takeover.Add(30*time.Second), true, 1))
		if !passed(r) || switchBack(r) != nil {
			t.Fatalf("decisions %s: want the canary passed", decisionNames(*r))
		}
	})
	t.Run("an ack", func(t *testing.T) {
		r, _, err := NewRollout("r1", testPlan(t), 1, t0)
		if err != nil {
			t.Fatal(err)
		}
		out := Step(&r, registryIn(t0, true, 1))
		if len(out.Commands) == 0 {
			t.Fatal("no install sent")
		}
		takeover := t0.Add(25 * time.Second) // the old leader died right after sending
		r.Adopt(2, takeover)
		for s := 26; s < 54; s++ {
			Step(&r, Tick{Now: t0.Add(time.Duration(s) * time.Second)})
		}
		if d := lastDecision(&r, schema.DecisionNodeUnknown); d != nil || switchBack(&r) != nil {
			t.Fatalf("timed out %+v: want the ack timeout counted from the takeover", d)
		}
		Step(&r, Tick{Now: takeover.Add(31 * time.Second)})
		if d := lastDecision(&r, schema.DecisionNodeUnknown); d == nil || d.Check != schema.CheckAckTimeout {
			t.Fatalf("decisions %s: want the node unknown once the ack timeout from the takeover passed", decisionNames(r))
		}
	})
}
