package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

func lastDecision(r *Rollout, kind schema.DecisionKind) *Decision {
	for i := len(r.Decisions) - 1; i >= 0; i-- {
		if r.Decisions[i].Decision == kind {
			return &r.Decisions[i]
		}
	}
	return nil
}

// committedSim is a sim of the test plan with policy, committed while the
// old registry holds unowned instances.
func committedSim(t *testing.T, policy string, unowned int) *sim {
	t.Helper()
	p := testPlan(t)
	p.Unowned = policy
	s := newSim(t, p)
	s.unowned = unowned
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseCommitted }, 500)
	if d := lastDecision(&s.r, schema.DecisionPrepared); unowned > 0 && (d == nil || !strings.Contains(d.Detail, "java-")) {
		t.Fatalf("prepared decision %+v: want the unowned instances named", d)
	}
	return s
}

// TestUnownedRefuse: finalize waits while unowned instances exist, naming
// them once, and goes ahead once they are gone.
func TestUnownedRefuse(t *testing.T) {
	s := committedSim(t, schema.UnownedRefuse, 2)
	s.step(s.stamp(RequestIn{Kind: schema.RequestFinalize, By: "alice"}))
	for range 20 {
		s.round(time.Second)
	}
	if s.r.Phase != schema.PhaseCommitted {
		t.Fatalf("phase %s with 2 unowned instances under refuse", s.r.Phase)
	}
	refusals := 0
	for _, d := range s.r.Decisions {
		if d.Decision == schema.DecisionFinalizeRefused {
			refusals++
			if d.Check != schema.CheckUnowned || !strings.Contains(d.Detail, "orders: java-2") {
				t.Fatalf("refusal %+v: want the unowned instances named", d)
			}
		}
	}
	if refusals != 1 {
		t.Fatalf("%d refusals recorded over 20 passes, want 1: %s", refusals, s.decisions())
	}
	s.unowned = 0 // the operator moved them
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseFinalized }, 100)
	if s.r.BridgeKept {
		t.Fatal("bridge kept under refuse")
	}
}

// TestUnownedKeepBridge: finalize goes ahead and keeps the bridge; a second
// finalize ends it.
func TestUnownedKeepBridge(t *testing.T) {
	s := committedSim(t, schema.UnownedKeepBridge, 3)
	s.step(s.stamp(RequestIn{Kind: schema.RequestFinalize, By: "alice"}))
	var stopped bool
	for range 100 {
		if s.r.Phase == schema.PhaseFinalized {
			break
		}
		s.round(time.Second)
	}
	if s.r.Phase != schema.PhaseFinalized || !s.r.BridgeKept {
		t.Fatalf("phase %s, bridge kept %v: want finalized with the bridge kept; %s", s.r.Phase, s.r.BridgeKept, s.decisions())
	}
	if d := lastDecision(&s.r, schema.DecisionBridgeKept); d == nil || !strings.Contains(d.Detail, "3 of them: orders: java-3") {
		t.Fatalf("bridge-kept decision %+v", d)
	}
	out := Step(&s.r, RequestIn{Now: s.now, Kind: schema.RequestFinalize, By: "bob"})
	stopped = out.Bridge == BridgeStop
	if !stopped || s.r.BridgeKept || lastDecision(&s.r, schema.DecisionBridgeEnded) == nil {
		t.Fatalf("second finalize: bridge %q, kept %v; want the bridge ended", out.Bridge, s.r.BridgeKept)
	}
	out = Step(&s.r, RequestIn{Now: s.now, Kind: schema.RequestFinalize, By: "bob"})
	if out.Bridge != "" || lastDecision(&s.r, schema.DecisionRequestRefused) == nil {
		t.Fatalf("third finalize: bridge %q; want refused", out.Bridge)
	}
}

// TestUnownedNoneStopsTheBridge: with nothing unowned, finalize stops the
// bridge whatever the policy.
func TestUnownedNoneStopsTheBridge(t *testing.T) {
	for _, policy := range []string{schema.UnownedKeepBridge, schema.UnownedRefuse} {
		s := committedSim(t, policy, 0)
		s.step(s.stamp(RequestIn{Kind: schema.RequestFinalize, By: "alice"}))
		s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseFinalized }, 100)
		if s.r.BridgeKept || lastDecision(&s.r, schema.DecisionFinalizeRefused) != nil {
			t.Fatalf("%s: kept %v, %s", policy, s.r.BridgeKept, s.decisions())
		}
	}
}
