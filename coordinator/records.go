package coordinator

import (
	"errors"
	"fmt"
	"slices"

	"github.com/regshift/regshift/schema"
)

// ErrRecords wraps every reason FromRecords refuses a rollout's records.
var ErrRecords = errors.New("inconsistent rollout records")

// FromRecords is the rollout a head and its node records hold (any order).
// Records that pass their schemas may still not make a rollout — written by
// a coordinator with a bug, by an older version, or half-compacted — and
// Step trusts everything it is given, so FromRecords checks everything Step
// relies on and refuses the records with the reason (an error wrapping
// ErrRecords) rather than let Step act on them:
//
//   - one record per node, for positions 0..node_count-1, of this rollout;
//   - the plan, rebuilt with those nodes, passes ValidatePlan;
//   - the current wave and every node's wave are waves; each wave holds as
//     many nodes as its size says, of its role (a provider wave providers);
//   - the stage names a role while switching back or finalizing, and is
//     empty otherwise;
//   - a pending command is the one this rollout would send that node, of a
//     kind the phase sends (install or activate while rolling or committed,
//     and then to a node of a wave reached; switch-back while switching
//     back; uninstall while finalizing; none before rolling or after a
//     failed prepare).
func FromRecords(head schema.RolloutRecord, nodes []schema.NodeRecord) (Rollout, error) {
	bad := func(format string, args ...any) (Rollout, error) {
		return Rollout{}, fmt.Errorf("%w: rollout %s: %s", ErrRecords, head.ID, fmt.Sprintf(format, args...))
	}
	if len(nodes) != head.NodeCount {
		return bad("%d node records, node_count is %d", len(nodes), head.NodeCount)
	}
	r := Rollout{RolloutRecord: head, Nodes: make([]Node, head.NodeCount)}
	seen := make([]bool, head.NodeCount)
	for _, n := range nodes {
		switch {
		case n.RolloutID != head.ID:
			return bad("node %s belongs to rollout %s", n.ID, n.RolloutID)
		case n.Index < 0 || n.Index >= head.NodeCount:
			return bad("node %s: index %d outside 0..%d", n.ID, n.Index, head.NodeCount-1)
		case seen[n.Index]:
			return bad("node %s: index %d twice", n.ID, n.Index)
		case n.Wave < 0 || n.Wave >= len(head.Waves):
			return bad("node %s: wave %d outside the %d waves", n.ID, n.Wave, len(head.Waves))
		}
		seen[n.Index] = true
		r.Nodes[n.Index] = Node{NodeRecord: n, Health: schema.HealthUnknown}
	}
	if head.Wave < 0 || head.Wave >= len(head.Waves) {
		return bad("wave %d outside the %d waves", head.Wave, len(head.Waves))
	}
	plan := head.Plan
	plan.Nodes = make([]schema.PlanNode, len(r.Nodes))
	for i := range r.Nodes {
		plan.Nodes[i] = schema.PlanNode{NodeID: r.Nodes[i].ID, Roles: r.Nodes[i].Roles}
	}
	if err := ValidatePlan(plan); err != nil {
		return bad("%v", err)
	}
	sizes := make([]int, len(head.Waves))
	for i := range r.Nodes {
		n := &r.Nodes[i]
		sizes[n.Wave]++
		if w := head.Waves[n.Wave]; provider(n) != (w.Role == schema.RoleProvider) {
			return bad("node %s (roles %v) is in wave %d of %ss", n.ID, n.Roles, n.Wave, w.Role)
		}
		if err := r.checkPending(n); err != nil {
			return bad("node %s: %v", n.ID, err)
		}
	}
	for w, size := range sizes {
		if size != head.Waves[w].Size {
			return bad("wave %d holds %d nodes, its size is %d", w, size, head.Waves[w].Size)
		}
	}
	staged := head.Phase == schema.PhaseSwitchingBack || head.Phase == schema.PhaseFinalizing
	if roleStage := head.Stage == schema.RoleConsumer || head.Stage == schema.RoleProvider; roleStage != staged {
		return bad("stage %q while %s", head.Stage, head.Phase)
	}
	return r, nil
}

// pendingKinds are the commands a phase may have in flight.
var pendingKinds = map[schema.RolloutPhase][]schema.CommandKind{
	schema.PhaseRolling:       {schema.CommandInstall, schema.CommandActivate},
	schema.PhaseCommitted:     {schema.CommandInstall, schema.CommandActivate},
	schema.PhaseSwitchingBack: {schema.CommandSwitchBack},
	schema.PhaseSwitchedBack:  {schema.CommandSwitchBack},
	schema.PhaseFinalizing:    {schema.CommandUninstall},
	schema.PhaseFinalized:     {schema.CommandUninstall},
}

// checkPending: a node's pending command is one the rollout would send it
// now (see FromRecords).
func (r *Rollout) checkPending(n *Node) error {
	p := n.Pending
	if p == nil {
		return nil
	}
	kind := p.Command.Kind
	if !slices.Contains(pendingKinds[r.Phase], kind) {
		return fmt.Errorf("a pending %s command while %s", kind, r.Phase)
	}
	if (kind == schema.CommandInstall || kind == schema.CommandActivate) && n.Wave > r.Wave {
		return fmt.Errorf("a pending %s command in wave %d, the rollout is at wave %d", kind, n.Wave, r.Wave)
	}
	if want := r.command(n, kind); p.Command != want {
		return fmt.Errorf("pending command %+v, want %+v", p.Command, want)
	}
	return nil
}
