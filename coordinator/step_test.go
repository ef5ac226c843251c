package coordinator

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

func testPlan(t testing.TB) schema.Plan {
	t.Helper()
	p, err := ParsePlan(mustRead(t, "testdata/plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decisionNames(r Rollout) string {
	var names []string
	for _, d := range r.Decisions {
		names = append(names, string(d.Decision))
	}
	return strings.Join(names, " ")
}

func TestHappyPathToFinalize(t *testing.T) {
	s := newSim(t, testPlan(t))
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseCommitted }, 500)
	for id, p := range s.primaries() {
		if p != "consul" {
			t.Fatalf("committed but %s is primary on %s", p, id)
		}
	}
	// Manual finalize: nothing is uninstalled until asked.
	for range 20 {
		s.round(time.Second)
	}
	if s.r.Phase != schema.PhaseCommitted {
		t.Fatalf("finalized without a request: %s", s.r.Phase)
	}
	s.step(s.stamp(RequestIn{Kind: schema.RequestFinalize, By: "alice"}))
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseFinalized }, 100)
	for id, st := range s.agents {
		if st.Primary != "consul" || st.Phase("zookeeper") != schema.StateRemoved {
			t.Fatalf("%s after finalize: primary %s, zookeeper %s", id, st.Primary, st.Phase("zookeeper"))
		}
	}
	want := "created prepared wave-passed wave-passed wave-passed wave-passed wave-passed wave-passed committed finalize-approved finalizing finalized"
	if got := decisionNames(s.r); got != want {
		t.Fatalf("decisions:\n got %s\nwant %s", got, want)
	}
	// Finalize uninstalls consumers before providers.
	assertOrder(t, s.log, "uninstall:c", "uninstall:p")
}

// assertOrder checks every log entry starting with first precedes every one
// starting with second.
func assertOrder(t *testing.T, log []string, first, second string) {
	t.Helper()
	lastFirst, firstSecond := -1, len(log)
	for i, l := range log {
		if strings.HasPrefix(l, first) {
			lastFirst = i
		}
		if strings.HasPrefix(l, second) && i < firstSecond {
			firstSecond = i
		}
	}
	if lastFirst > firstSecond {
		t.Fatalf("%s… sent after %s…: %v", first, second, log)
	}
}

func TestFailingGateSwitchesBack(t *testing.T) {
	s := newSim(t, testPlan(t))
	// Let the provider waves pass, then Consul turns unhealthy in the
	// consumer canary wave.
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseRolling && s.r.Wave == 3 }, 500)
	s.newHealthy = false
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseSwitchedBack }, 200)
	for id, p := range s.primaries() {
		if p != "zookeeper" {
			t.Fatalf("switched back but %s is primary on %s", p, id)
		}
	}
	var sb *Decision
	for i, d := range s.r.Decisions {
		if d.Decision == schema.DecisionSwitchBack {
			sb = &s.r.Decisions[i]
		}
	}
	// c1 reports critical on Consul: a failure over the budget of 0, at once.
	if sb == nil || sb.Check != schema.CheckFailureBudget || sb.Observed == nil || *sb.Observed <= *sb.Threshold || len(sb.Nodes) == 0 {
		t.Fatalf("switch-back decision lacks its inputs: %+v", sb)
	}
	assertOrder(t, s.log, "switch-back:c", "switch-back:p")
	if strings.Contains(strings.Join(s.log, " "), "switch-back:c2") {
		t.Fatal("c2 was never touched but was sent a switch-back")
	}
}

func TestPauseOnFailureThenApprove(t *testing.T) {
	p := testPlan(t)
	p.Gates.OnFailure = OnFailurePause
	p.Gates.MinHealthyRatio = 0.5
	s := newSim(t, p)
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseRolling && s.r.Wave == 1 }, 300)
	s.parity = 0.5 // the bridge falls behind: parity below the plan's 0.99
	s.runUntil(t, func() bool { return s.r.Held }, 300)
	last := s.r.Decisions[len(s.r.Decisions)-1]
	if last.Decision != schema.DecisionHeld || last.Check != schema.CheckParity || *last.Observed != 0.5 {
		t.Fatalf("held on %+v", last)
	}
	// Nothing moves while held.
	sent := len(s.log)
	for range 10 {
		s.round(time.Second)
	}
	if len(s.log) != sent {
		t.Fatalf("commands sent while held: %v", s.log[sent:])
	}
	wave := s.r.Wave + 1
	s.step(s.stamp(RequestIn{Kind: schema.RequestApprove, By: "bob", Wave: &wave}))
	if s.r.Held || s.r.Wave != wave {
		t.Fatalf("approve did not pass the gate: held=%v wave=%d", s.r.Held, s.r.Wave)
	}
}

func TestPrepareWaitsForParity(t *testing.T) {
	s := newSim(t, testPlan(t))
	s.parity = 0.5
	s.runUntil(t, func() bool { return s.r.Phase == schema.PhaseFailed }, 100)
	last := s.r.Decisions[len(s.r.Decisions)-1]
	if last.Decision != schema.DecisionPrepareFailed || last.Check != schema.CheckParity || *last.Observed != 0.5 {
		t.Fatalf("prepare decision %+v", last)
	}
	if strings.Join(s.log, "") != "" {
		t.Fatalf("commands sent although prepare failed: %v", s.log)
	}
}

func TestAckTimeoutIsUnknownNeverHealthy(t *testing.T) {
	s := newSim(t, testPlan(t))
	s.step(s.stamp(s.registry()))
	if s.r.Phase != schema.PhaseRolling {
		t.Fatalf("phase %s", s.r.Phase)
	}
	// p1 never answers: its commands are re-sent with the same id, then it
	// is unknown and the budget of 0 switches back.
	for i := 0; i < 40 && s.r.Phase == schema.PhaseRolling; i++ {
		s.cmdQ["p1"] = nil
		s.now = s.now.Add(time.Second)
		s.step(Tick{Now: s.now})
	}
	if s.r.Phase != schema.PhaseSwitchingBack && s.r.Phase != schema.PhaseSwitchedBack {
		t.Fatalf("phase %s after p1's silence\n%s", s.r.Phase, s.decisions())
	}
	n := s.r.Node("p1")
	if !strings.Contains(n.Failure, "no answer") || healthy(n) {
		t.Fatalf("p1: %+v", n)
	}
	resends := strings.Count(strings.Join(s.log, " "), "install:p1")
	if resends < 3 {
		t.Fatalf("install re-sent %d times before the timeout", resends)
	}
}

func TestRequestsRefusedOutOfPhase(t *testing.T) {
	s := newSim(t, testPlan(t))
	for _, kind := range []schema.RequestKind{schema.RequestFinalize, schema.RequestApprove, schema.RequestResume, "reboot"} {
		s.step(s.stamp(RequestIn{Kind: kind, By: "x"}))
		last := s.r.Decisions[len(s.r.Decisions)-1]
		if last.Decision != schema.DecisionRequestRefused || last.Check != schema.Check(kind) {
			t.Fatalf("%s: %+v", kind, last)
		}
	}
	s.step(s.stamp(RequestIn{Kind: schema.RequestAbort, By: "x"}))
	if s.r.Phase != schema.PhaseSwitchedBack {
		t.Fatalf("abort while preparing: %s", s.r.Phase)
	}
}

func mustRead(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
