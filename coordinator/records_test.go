package coordinator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

// rollingRecords are the records of a rollout of testdata/plan.yaml in its
// first wave, p1's install pending: waves [p1] [p2] [p3] [c1] [c2] [c3].
func rollingRecords(t *testing.T) (schema.RolloutRecord, []schema.NodeRecord) {
	t.Helper()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r, _, err := NewRollout("ro-1", testPlan(t), 1, start)
	if err != nil {
		t.Fatal(err)
	}
	Step(&r, RegistryIn{Now: start, Report: RegistryReport{At: start, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	if r.Phase != schema.PhaseRolling || r.Node("p1").Pending == nil {
		t.Fatalf("phase %s, p1 %+v", r.Phase, r.Node("p1").NodeRecord)
	}
	head := roundTrip(t, &r.RolloutRecord)
	nodes := make([]schema.NodeRecord, len(r.Nodes))
	for i := range r.Nodes {
		n := r.NodeRecord(i)
		nodes[i] = *roundTrip(t, &n)
	}
	return *head, nodes
}

// TestFromRecordsRefusesWhatStepCannotTrust: each case breaks one thing
// Step relies on in records that still pass their JSON Schemas; FromRecords
// refuses them with a reason that names it. (Every record the random
// rollouts of TestFailoverFromTheRecord persist passes the same checks.)
func TestFromRecordsRefusesWhatStepCannotTrust(t *testing.T) {
	node := func(nodes []schema.NodeRecord, id string) *schema.NodeRecord {
		for i := range nodes {
			if nodes[i].ID == id {
				return &nodes[i]
			}
		}
		t.Fatalf("no node %s", id)
		return nil
	}
	p1Command := func(f func(c *schema.CommandRef)) func(*schema.RolloutRecord, *[]schema.NodeRecord) {
		return func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) { f(&node(*nodes, "p1").Pending.Command) }
	}
	for _, tc := range []struct {
		name   string
		breaks func(h *schema.RolloutRecord, nodes *[]schema.NodeRecord)
		want   string // "" = accepted
	}{
		{name: "as persisted", breaks: func(*schema.RolloutRecord, *[]schema.NodeRecord) {}},
		{name: "a node record missing", want: "5 node records, node_count is 6",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) { *nodes = (*nodes)[1:] }},
		{name: "node_count beyond the records", want: "6 node records, node_count is 100000",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.NodeCount = 100_000
			}},
		{name: "a node of another rollout", want: "node c1 belongs to rollout ro-2",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				node(*nodes, "c1").RolloutID = "ro-2"
			}},
		{name: "two nodes at one index", want: "index 0 twice",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				node(*nodes, "c1").Index = 0
			}},
		{name: "a node id twice", want: `node_id: "p1" is listed twice`,
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				node(*nodes, "p2").ID = "p1"
			}},
		{name: "a node beyond the waves", want: "node c3: wave 6 outside the 6 waves",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				node(*nodes, "c3").Wave = 6
			}},
		{name: "the current wave beyond the waves", want: "wave 9 outside the 6 waves",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) { h.Wave = 9 }},
		{name: "waves that never reach every node", want: "waves.percentages: ends at 90",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Plan.Waves.Percentages = []int{50, 90}
			}},
		{name: "from and to the same interface", want: `to.name: "zookeeper" is also the from interface`,
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Plan.To.Name = "zookeeper"
			}},
		{name: "falling percentages", want: "waves.percentages[1]: 40",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Plan.Waves.Percentages = []int{50, 40, 100}
			}},
		{name: "a wave's size not its nodes", want: "wave 1 holds 1 nodes, its size is 2",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Waves[1].Size = 2
			}},
		{name: "a consumer in a provider wave", want: "node c1 (roles [consumer]) is in wave 1 of providers",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				node(*nodes, "c1").Wave = 1
				node(*nodes, "p2").Wave = 3
				node(*nodes, "p2").Roles = []string{schema.RoleConsumer}
			}},
		{name: "switching back without a stage", want: `stage "" while switching-back`,
			breaks: func(h *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				h.Phase = schema.PhaseSwitchingBack
				node(*nodes, "p1").Pending = nil
			}},
		{name: "a stage while rolling", want: `stage "provider" while rolling`,
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Stage = schema.RoleProvider
			}},
		{name: "a pending command for another node", want: "node p1: pending command",
			breaks: p1Command(func(c *schema.CommandRef) { c.Node = "victim" })},
		{name: "a pending command under another id", want: "node p1: pending command",
			breaks: p1Command(func(c *schema.CommandRef) { c.ID = "ro-1:p2:install" })},
		{name: "a pending install of another interface", want: "node p1: pending command",
			breaks: p1Command(func(c *schema.CommandRef) { c.Interface = "zookeeper" })},
		{name: "an uninstall pending while rolling", want: "node p1: a pending uninstall command while rolling",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				p := node(*nodes, "p1").Pending
				p.Command = schema.CommandRef{ID: CommandID("ro-1", "p1", schema.CommandUninstall), Node: "p1",
					Kind: schema.CommandUninstall, Interface: "zookeeper"}
			}},
		{name: "an install pending while preparing", want: "node p1: a pending install command while preparing",
			breaks: func(h *schema.RolloutRecord, _ *[]schema.NodeRecord) {
				h.Phase = schema.PhasePreparing
			}},
		{name: "an install pending in a wave not reached", want: "node c3: a pending install command in wave 5, the rollout is at wave 0",
			breaks: func(_ *schema.RolloutRecord, nodes *[]schema.NodeRecord) {
				p := *node(*nodes, "p1").Pending
				p.Command.ID, p.Command.Node = CommandID("ro-1", "c3", schema.CommandInstall), "c3"
				node(*nodes, "c3").Pending = &p
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, nodes := rollingRecords(t)
			tc.breaks(&head, &nodes)
			// Still records the schemas accept: only FromRecords can refuse them.
			roundTrip(t, &head)
			for i := range nodes {
				roundTrip(t, &nodes[i])
			}
			r, err := FromRecords(head, nodes)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				Step(&r, Tick{Now: r.Now.Add(time.Second)})
				return
			}
			if !errors.Is(err, ErrRecords) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("FromRecords = %v, want ErrRecords saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "rollout ro-1") {
				t.Errorf("%v does not name the rollout", err)
			}
		})
	}
}

// TestHaltHoldsUntilResume: a rollout halted after a failed step records
// why (bounded), is held, and steps on from its records after a resume.
func TestHaltHoldsUntilResume(t *testing.T) {
	head, nodes := rollingRecords(t)
	r, err := FromRecords(head, nodes)
	if err != nil {
		t.Fatal(err)
	}
	r.TakeDirty()
	out := r.Halt("runtime error: " + strings.Repeat("x", 2*schema.MaxDetail))
	d := r.Decisions[len(r.Decisions)-1]
	switch {
	case !r.Held:
		t.Fatal("not held")
	case len(out.Decisions) != 1 || d.Decision != schema.DecisionHeld || d.Check != schema.CheckStep:
		t.Fatalf("decision %+v, output %+v", d, out)
	case len(d.Detail) > schema.MaxDetail || !strings.Contains(d.Detail, "runtime error: xxx"):
		t.Fatalf("detail of %d bytes: %.80q", len(d.Detail), d.Detail)
	case !r.TakeDirty().Head:
		t.Fatal("the head is not dirty: the hold would not be persisted")
	}
	now := r.Now.Add(time.Second)
	if out := Step(&r, RequestIn{Now: now, Kind: schema.RequestResume, By: "alice"}); r.Held || len(out.Decisions) == 0 ||
		out.Decisions[0].Decision != schema.DecisionResumed {
		t.Fatalf("after resume: held %v, %+v", r.Held, out)
	}
}

// TestApproveDoesNotPassAHalt: approve passes a gate, not a hold after a
// failed step; resume (or abort) is the way on.
func TestApproveDoesNotPassAHalt(t *testing.T) {
	head, nodes := rollingRecords(t)
	r, err := FromRecords(head, nodes)
	if err != nil {
		t.Fatal(err)
	}
	r.Halt("boom")
	Step(&r, RequestIn{Now: r.Now, Kind: schema.RequestApprove, By: "alice"})
	if d := r.Decisions[len(r.Decisions)-1]; !r.Held || r.Wave != 0 || d.Decision != schema.DecisionRequestRefused {
		t.Fatalf("approve of a halted rollout: held %v, wave %d, decision %+v", r.Held, r.Wave, d)
	}
}
