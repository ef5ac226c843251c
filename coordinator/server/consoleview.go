package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// The console's view of a rollout: what the page draws, computed here so
// the page holds no rule of the gates. A head is small (bounded by the
// plan's gates and MaxDecisions decisions); the nodes go as compact rows,
// all of them once in a snapshot, then only those that changed.

// conHead is a rollout without its nodes.
type conHead struct {
	ID               string                 `json:"id"`
	Phase            coordinator.Phase      `json:"phase"`
	Paused           bool                   `json:"paused"`
	Held             bool                   `json:"held"`
	Wave             int                    `json:"wave"` // 1-based
	Waves            []conWave              `json:"waves"`
	Stage            string                 `json:"stage,omitempty"`
	FinalizeApproved bool                   `json:"finalize_approved"`
	BridgeKept       bool                   `json:"bridge_kept,omitempty"`
	From             string                 `json:"from"`
	To               string                 `json:"to"`
	Finalize         string                 `json:"finalize"`
	Created          time.Time              `json:"created"`
	Now              time.Time              `json:"now"`
	NodeCount        int                    `json:"node_count"`
	Nodes            map[string]int         `json:"nodes"` // by progress, as the list's summary counts them
	Registry         schema.RegistryReport  `json:"registry"`
	Gates            []conGate              `json:"gates"`
	Decisions        []coordinator.Decision `json:"decisions"` // latest last
	EarlierDecisions int                    `json:"earlier_decisions,omitempty"`
	Quarantined      string                 `json:"quarantined,omitempty"`
	Phases           []phaseMark            `json:"phases"`
	Commands         map[string]string      `json:"commands"` // action -> the CLI command that does it
	Allowed          map[string]bool        `json:"allowed"`  // action -> whether the rollout's phase takes it now
}

// conWave is one wave: its role and size, and its nodes by state.
type conWave struct {
	Role   string `json:"role"`
	Size   int    `json:"size"`
	Done   int    `json:"done"`   // reached the wave's target for the phase
	Failed int    `json:"failed"` // carry a failure
}

// conGate is one gate: its threshold, the value it would see now, and the
// last value a decision recorded for it.
type conGate struct {
	Check     string `json:"check"`
	Threshold string `json:"threshold"`
	Observed  string `json:"observed"`
	OK        *bool  `json:"ok,omitempty"` // nil: nothing to judge yet
	Last      string `json:"last,omitempty"`
	LastAt    string `json:"last_at,omitempty"`
	Note      string `json:"note,omitempty"`
}

// phaseMark is when the console saw a rollout enter a phase.
type phaseMark struct {
	Phase coordinator.Phase `json:"phase"`
	At    time.Time         `json:"at"`
}

// conNode is a node as a compact row: id, wave, roles, progress, health,
// pending command, failure, health detail. A delta row is prefixed by the
// node's index.
func conNode(n *coordinator.Node) []any {
	return []any{n.ID, n.Wave, strings.Join(n.Roles, ","), coordinator.ProgressName(n.Reached), string(n.Health), pendingText(n.Pending), n.Failure, n.HealthDetail}
}

// pendingText is a pending command as the page shows it on hover.
func pendingText(p *coordinator.Pending) string {
	if p == nil {
		return ""
	}
	c := p.Command
	s := string(c.Kind) + " " + c.Interface
	if c.To != "" {
		s += " → " + c.To
	}
	return fmt.Sprintf("%s (%s, sent %d× since %s)", s, c.ID, p.Sends, p.FirstSent.UTC().Format("15:04:05"))
}

// sameNode reports whether two snapshots of a node draw the same.
func sameNode(a, b *coordinator.Node) bool {
	pa, pb := a.Pending, b.Pending
	samePending := pa == nil && pb == nil || pa != nil && pb != nil && pa.Command.ID == pb.Command.ID && pa.Sends == pb.Sends
	return a.Reached == b.Reached && a.Health == b.Health && a.HealthDetail == b.HealthDetail && a.Failure == b.Failure && samePending
}

// head builds the console's head of a rollout.
func head(r *coordinator.Rollout, sum Summary, phases []phaseMark) conHead {
	h := conHead{ID: r.ID, Phase: r.Phase, Paused: r.Paused, Held: r.Held, Wave: r.Wave + 1, Stage: r.Stage,
		FinalizeApproved: r.FinalizeApproved, BridgeKept: r.BridgeKept, From: ifaceName(r.Plan.From), To: ifaceName(r.Plan.To),
		Finalize: r.Plan.Finalize, Created: r.Created, Now: r.Now, NodeCount: len(r.Nodes), Nodes: sum.Nodes, Registry: r.Registry,
		Decisions: r.Decisions, EarlierDecisions: r.EarlierDecisions, Phases: phases}
	target, _ := coordinator.WaveTarget(r.Phase)
	h.Waves = make([]conWave, len(r.Waves))
	for i, w := range r.Waves {
		h.Waves[i] = conWave{Role: w.Role, Size: w.Size}
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.Wave < 0 || n.Wave >= len(h.Waves) {
			continue
		}
		if n.Reached == target {
			h.Waves[n.Wave].Done++
		}
		if n.Failure != "" {
			h.Waves[n.Wave].Failed++
		}
	}
	h.Gates = gates(r)
	h.Commands, h.Allowed = actions(r)
	return h
}

func ifaceName(i schema.Interface) string {
	s := i.Kind
	if i.Name != "" && i.Name != s {
		s = i.Name + " (" + s + ")"
	}
	return s
}

// gates are the plan's gates with the values they would see now, over the
// nodes moved so far (every wave up to the current one), and the last
// value a decision recorded for each.
func gates(r *coordinator.Rollout) []conGate {
	g := r.Plan.Gates
	moved, healthyN, healthyAll, failed := 0, 0, 0, 0
	var oldestPending time.Time
	for i := range r.Nodes {
		n := &r.Nodes[i]
		h := n.Healthy()
		if h {
			healthyAll++
		}
		if n.Wave <= r.Wave {
			moved++
			if h {
				healthyN++
			}
		}
		if n.Wave == r.Wave && n.Failure != "" {
			failed++
		}
		if p := n.Pending; p != nil && (oldestPending.IsZero() || p.FirstSent.Before(oldestPending)) {
			oldestPending = p.FirstSent
		}
	}
	last := map[schema.Check]*coordinator.Decision{}
	for i := range r.Decisions {
		if d := &r.Decisions[i]; d.Check != "" {
			last[d.Check] = d
		}
	}
	pass := func(b bool) *bool { return &b }
	var out []conGate
	add := func(c conGate, check schema.Check) {
		if d := last[check]; d != nil {
			c.Last = string(d.Decision)
			if d.Observed != nil {
				c.Last += fmt.Sprintf(" (observed %s)", num(*d.Observed))
			}
			c.LastAt = d.At.UTC().Format(time.RFC3339)
		}
		out = append(out, c)
	}
	ratio := conGate{Check: string(schema.CheckHealthyRatio), Threshold: "≥ " + num(g.MinHealthyRatio), Observed: "no node moved yet"}
	if moved > 0 {
		v := float64(healthyN) / float64(moved)
		ratio.Observed = fmt.Sprintf("%s (%d of %d moved healthy)", num(v), healthyN, moved)
		if r.SoakStarted.IsZero() {
			ratio.Note = "judged once the wave settled and soaked" // a moving wave fails nothing
		} else {
			ratio.OK = pass(v >= g.MinHealthyRatio)
		}
	}
	add(ratio, schema.CheckHealthyRatio)
	add(conGate{Check: string(schema.CheckFailureBudget), Threshold: fmt.Sprintf("≤ %d failed in the wave", g.FailureBudget),
		Observed: fmt.Sprintf("%d failed in wave %d", failed, r.Wave+1), OK: pass(failed <= g.FailureBudget)}, schema.CheckFailureBudget)
	rep := r.Registry
	par := conGate{Check: string(schema.CheckParity), Threshold: "≥ " + num(g.MinParity), Observed: "no registry report yet"}
	switch {
	case rep.At.IsZero():
	case !rep.Reachable:
		par.Observed, par.OK = "new registry unreachable", pass(false)
	case !rep.BridgeConverged:
		par.Observed, par.Note = num(rep.Parity), "the bridge has not finished a full sync: not evidence yet"
	default:
		v := rep.Parity
		par.Observed, par.OK = num(v), pass(v >= g.MinParity)
	}
	add(par, schema.CheckParity)
	soak := conGate{Check: "soak", Threshold: fmt.Sprintf("%ds after the wave settles", g.SoakSeconds), Observed: "not started"}
	if !r.SoakStarted.IsZero() {
		el := r.Now.Sub(r.SoakStarted).Round(time.Second)
		soak.Observed = el.String() + " soaked"
		if el >= time.Duration(g.SoakSeconds)*time.Second {
			soak.OK = pass(true) // not done yet is no failure: nil
		}
	}
	out = append(out, soak)
	ack := conGate{Check: string(schema.CheckAckTimeout), Threshold: fmt.Sprintf("answer within %ds", g.AckTimeoutSeconds), Observed: "no command pending"}
	if !oldestPending.IsZero() {
		age := r.Now.Sub(oldestPending).Round(time.Second)
		ack.Observed, ack.OK = "oldest pending "+age.String(), pass(age <= time.Duration(g.AckTimeoutSeconds)*time.Second)
	}
	add(ack, schema.CheckAckTimeout)
	all := conGate{Check: string(schema.CheckCommitAllHealthy), Threshold: "every node healthy before commit",
		Observed: fmt.Sprintf("%d of %d healthy", healthyAll, len(r.Nodes)),
		Note:     fmt.Sprintf("a node's critical reports count %s after its activation", g.ActivationGrace())}
	if healthyAll == len(r.Nodes) {
		all.OK = pass(true) // judged at commit only: fewer is no failure before
	}
	add(all, schema.CheckCommitAllHealthy)
	if r.Phase != schema.PhasePreparing && r.Phase != schema.PhaseRolling {
		// Past the gates: what they would see now judges nothing.
		for i := range out {
			out[i].OK, out[i].Note = nil, "judged while rolling; the rollout is "+string(r.Phase)
		}
	}
	return out
}

// num prints a ratio or count briefly.
func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

// actions are the requests an operator can make of the rollout, with the
// CLI command that makes each, and which of them its phase takes now.
func actions(r *coordinator.Rollout) (map[string]string, map[string]bool) {
	cmds := map[string]string{}
	for _, k := range consoleKinds {
		c := "regshift rollout " + string(k) + " -id " + r.ID
		if k == schema.RequestApprove {
			c += fmt.Sprintf(" -wave %d", r.Wave+1)
		}
		cmds[string(k)] = c + " -key OPERATOR.key"
	}
	active := !r.Phase.Ended()
	rolling := r.Phase == schema.PhasePreparing || r.Phase == schema.PhaseRolling
	allowed := map[string]bool{
		string(schema.RequestPause):    rolling && !r.Paused,
		string(schema.RequestResume):   rolling && (r.Paused || r.Held),
		string(schema.RequestApprove):  rolling && r.Held,
		string(schema.RequestAbort):    active && r.Phase != schema.PhaseSwitchingBack && r.Phase != schema.PhaseFinalizing,
		string(schema.RequestFinalize): r.Phase == schema.PhaseCommitted || r.Phase == schema.PhaseFinalized && r.BridgeKept,
	}
	return cmds, allowed
}

// consoleKinds are the requests the console makes, in the page's order.
var consoleKinds = []schema.RequestKind{schema.RequestPause, schema.RequestResume, schema.RequestApprove, schema.RequestAbort, schema.RequestFinalize}
