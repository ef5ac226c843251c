package coordinator

import (
	"fmt"
	"time"

	"github.com/regshift/regshift/schema"
)

// Input is anything Step folds into a rollout.
type Input interface{ at() time.Time }

// Inputs.
type (
	// Tick moves the clock: re-sends, ack timeouts and soaks end on ticks.
	Tick struct{ Now time.Time }
	// AckIn is an agent's answer to a command.
	AckIn struct {
		Now time.Time
		Ack schema.Ack
	}
	// HealthIn is an agent's health report.
	HealthIn struct {
		Now    time.Time
		Health schema.Health
	}
	// HelloIn is an agent's inventory after it (re)started.
	HelloIn struct {
		Now   time.Time
		Hello schema.Hello
	}
	// RegistryIn is the runtime's measurement of the registry side.
	RegistryIn struct {
		Now    time.Time
		Report RegistryReport
	}
	// RequestIn is an operator's or another system's request.
	RequestIn struct {
		Now  time.Time
		Kind schema.RequestKind
		By   string
		Wave *int // approve: the wave (1-based) whose gate is passed
	}
)

func (i Tick) at() time.Time       { return i.Now }
func (i AckIn) at() time.Time      { return i.Now }
func (i HealthIn) at() time.Time   { return i.Now }
func (i HelloIn) at() time.Time    { return i.Now }
func (i RegistryIn) at() time.Time { return i.Now }
func (i RequestIn) at() time.Time  { return i.Now }

// ResendEvery is how often an unanswered command is sent again, with its
// original id, until the plan's ack timeout.
func ResendEvery(p schema.Plan) time.Duration {
	return max(time.Second, time.Duration(p.Gates.AckTimeoutSeconds)*time.Second/5)
}

// Step folds one input into the rollout and returns what to do. It changes
// *r in place — a rollout of 100,000 nodes is not copied per event — and
// nothing else (the input, the plan's slices and any Clone are untouched);
// callers that need the previous state keep a Clone. It does no I/O and
// reads no clock: the same rollout and input always give the same result,
// which TestFailoverFromTheRecord checks on every step of random rollouts.
func Step(r *Rollout, in Input) Output {
	var out Output
	if t := in.at(); t.After(r.Now) {
		r.Now = t
	}
	switch in := in.(type) {
	case AckIn:
		r.onAck(&out, in.Ack)
	case HealthIn:
		r.onHealth(in.Health)
		if r.Phase != schema.PhaseRolling || (r.SoakStarted.IsZero() && !r.criticalIn(in.Health.NodeID)) {
			// Health matters to a gate, or as a failure (critical) in the
			// current wave; otherwise nothing to do (the most frequent
			// input, so it stays O(1)).
			return out
		}
	case HelloIn:
		r.onHello(in.Hello)
	case RegistryIn:
		r.Registry = in.Report
	case RequestIn:
		r.onRequest(&out, in)
	}
	r.advance(&out)
	return out
}

func (r *Rollout) onAck(out *Output, a schema.Ack) {
	n := r.Node(a.NodeID)
	if n == nil || n.Pending == nil || n.Pending.Command.ID != a.CommandID {
		return // not for this rollout, or a duplicate of an answered command
	}
	cmd := n.Pending.Command
	if a.Outcome != schema.AckDone {
		failure := fmt.Sprintf("%s %s: %s", cmd.Kind, a.Outcome, a.Reason)
		if failure != n.Failure {
			r.decide(out, Decision{Decision: schema.DecisionNodeFailed, Check: schema.CheckAck, Nodes: []string{n.ID}, Detail: failure})
		}
		n.Failure = failure
		if cmd.Kind == schema.CommandInstall || cmd.Kind == schema.CommandActivate {
			n.Pending = nil // counts against the wave's failure budget
		}
		// A failed switch-back or uninstall stays pending and is re-sent with
		// its id: the agent did not record it as applied, so it tries again.
		// Both must complete.
		return
	}
	n.Pending, n.Failure = nil, ""
	switch cmd.Kind {
	case schema.CommandInstall:
		n.Reached = schema.ReachedInstalled
	case schema.CommandActivate:
		n.Reached, n.ActiveAt = schema.ReachedActive, r.Now
	case schema.CommandSwitchBack:
		n.Reached = schema.ReachedSwitchedBack
	case schema.CommandUninstall:
		n.Reached = schema.ReachedUninstalled
	}
}

func (r *Rollout) onHealth(h schema.Health) {
	n := r.Node(h.NodeID)
	if n == nil {
		return
	}
	for _, ih := range h.Interfaces {
		if ih.Name == r.Plan.To.Name {
			n.Health, n.HealthAt = ih.Status, r.Now
		}
	}
}

// onHello reconciles what a (re)started agent reports with what the
// coordinator believes: a node that lost the new interface is moved back so
// its install is sent again (same id: an agent that lost its state applies
// it; one that did not answers it as a duplicate), and a pending command the
// node has visibly carried out counts as answered.
func (r *Rollout) onHello(h schema.Hello) {
	n := r.Node(h.NodeID)
	if n == nil {
		return
	}
	state := schema.StateAbsent
	for _, is := range h.Interfaces {
		if is.Name == r.Plan.To.Name {
			state = is.State
		}
	}
	if (state == schema.StateAbsent || state == schema.StateRemoved) && n.Reached == schema.ReachedInstalled && r.Phase == schema.PhaseRolling {
		n.Reached = schema.ReachedNone
	}
	if n.Pending == nil {
		return
	}
	switch k := n.Pending.Command.Kind; {
	case k == schema.CommandInstall && (state == schema.StateInstalled || state == schema.StateStandby):
		n.Pending, n.Reached = nil, schema.ReachedInstalled
	case k == schema.CommandActivate && state == schema.StateActive:
		n.Pending, n.Reached, n.ActiveAt = nil, schema.ReachedActive, r.Now
	}
}

func (r *Rollout) onRequest(out *Output, q RequestIn) {
	refuse := func(why string) {
		r.decide(out, Decision{Decision: schema.DecisionRequestRefused, Check: schema.Check(q.Kind), Detail: why})
	}
	switch q.Kind {
	case schema.RequestPause:
		if r.Phase != schema.PhasePreparing && r.Phase != schema.PhaseRolling {
			refuse("only a preparing or rolling rollout pauses")
			return
		}
		r.Paused = true
		r.decide(out, Decision{Decision: schema.DecisionPaused, Detail: "by " + q.By})
	case schema.RequestResume:
		if !r.Paused && !r.Held {
			refuse("not paused")
			return
		}
		if r.Held {
			// Retry the nodes that failed so far (same ids: an agent that
			// failed did not record the command), soak again, re-evaluate.
			for i := 0; i <= r.Wave; i++ {
				for _, n := range r.wave(i) {
					if n.Reached != schema.ReachedActive {
						n.Failure = ""
					}
				}
			}
			r.SoakStarted = time.Time{}
		}
		r.Paused, r.Held = false, false
		r.decide(out, Decision{Decision: schema.DecisionResumed, Detail: "by " + q.By})
	case schema.RequestApprove:
		if !r.Held {
			refuse("no gate is waiting for approval")
			return
		}
		if q.Wave != nil && *q.Wave != r.Wave+1 {
			refuse(fmt.Sprintf("wave %d is waiting, not wave %d", r.Wave+1, *q.Wave))
			return
		}
		r.Held = false
		r.decide(out, Decision{Decision: schema.DecisionGateApproved, Detail: fmt.Sprintf("wave %d passed by %s", r.Wave+1, q.By)})
		r.nextWave(out)
	case schema.RequestAbort:
		switch r.Phase {
		case schema.PhasePreparing:
			r.Phase = schema.PhaseSwitchedBack
			out.Bridge = BridgeStop
			r.decide(out, Decision{Decision: schema.DecisionAborted, Detail: "by " + q.By + "; no node was touched"})
		case schema.PhaseRolling, schema.PhaseCommitted:
			r.decide(out, Decision{Decision: schema.DecisionAborted, Detail: "by " + q.By})
			r.startSwitchBack(out)
		default:
			refuse(fmt.Sprintf("a %s rollout cannot be aborted", r.Phase))
		}
	case schema.RequestFinalize:
		if r.Phase != schema.PhaseCommitted {
			refuse(fmt.Sprintf("only a committed rollout finalizes; this one is %s", r.Phase))
			return
		}
		r.FinalizeApproved = true
		r.decide(out, Decision{Decision: schema.DecisionFinalizeApproved, Detail: "by " + q.By})
	default:
		refuse(fmt.Sprintf("unknown request %q", q.Kind))
	}
}

// advance does what the rollout's phase calls for now. It is level-
// triggered: called after every input, it sends whatever is missing.
func (r *Rollout) advance(out *Output) {
	switch r.Phase {
	case schema.PhasePreparing:
		r.prepare(out)
	case schema.PhaseRolling:
		r.roll(out)
	case schema.PhaseCommitted:
		if r.Plan.Finalize == FinalizeAutomatic || r.FinalizeApproved {
			r.Phase, r.Stage = schema.PhaseFinalizing, schema.RoleConsumer
			r.decide(out, Decision{Decision: schema.DecisionFinalizing, Detail: "uninstall " + r.Plan.From.Name + ": consumers first, then providers"})
			r.staged(out, schema.CommandUninstall, schema.ReachedUninstalled)
		}
	case schema.PhaseFinalizing:
		r.staged(out, schema.CommandUninstall, schema.ReachedUninstalled)
	case schema.PhaseSwitchingBack:
		r.staged(out, schema.CommandSwitchBack, schema.ReachedSwitchedBack)
	}
}

func (r *Rollout) prepare(out *Output) {
	if r.Paused {
		return
	}
	rep, g := r.Registry, r.Plan.Gates
	ok := !rep.At.IsZero() && rep.Reachable && rep.Healthy && rep.BridgeRunning && rep.Parity >= g.MinParity
	if ok {
		r.decide(out, Decision{Decision: schema.DecisionPrepared, Check: schema.CheckParity, Observed: ptr(rep.Parity), Threshold: ptr(g.MinParity),
			Detail: r.Plan.To.Name + " reachable and healthy, bridge running"})
		r.Phase, r.Wave = schema.PhaseRolling, 0
		r.roll(out)
		return
	}
	if r.Now.Sub(r.Created) < time.Duration(g.AckTimeoutSeconds)*time.Second {
		return // give the registry side until the ack timeout
	}
	d := Decision{Decision: schema.DecisionPrepareFailed, Detail: rep.Detail}
	switch {
	case rep.At.IsZero():
		d.Check, d.Detail = schema.CheckRegistry, "no registry report within the ack timeout"
	case !rep.Reachable || !rep.Healthy:
		d.Check = schema.CheckRegistryHealth
	case !rep.BridgeRunning:
		d.Check = schema.CheckBridge
	default:
		d.Check, d.Observed, d.Threshold = schema.CheckParity, ptr(rep.Parity), ptr(g.MinParity)
	}
	r.Phase = schema.PhaseFailed
	out.Bridge = BridgeStop
	r.decide(out, d)
}

// roll drives the current wave: time out and re-send pending commands, send
// the next ones within max in flight, soak, and evaluate the gate.
func (r *Rollout) roll(out *Output) {
	wave := r.wave(r.Wave)
	ackTimeout := time.Duration(r.Plan.Gates.AckTimeoutSeconds) * time.Second
	for _, n := range wave {
		if p := n.Pending; p != nil && r.Now.Sub(p.FirstSent) >= ackTimeout {
			n.Pending = nil
			n.Failure = fmt.Sprintf("%s: no answer within %s", p.Command.Kind, ackTimeout)
			r.decide(out, Decision{Decision: schema.DecisionNodeUnknown, Check: schema.CheckAckTimeout, Nodes: []string{n.ID}, Detail: n.Failure})
		}
	}
	r.resend(out, wave)
	failed := r.failedIn(wave)
	if len(failed) > r.Plan.Gates.FailureBudget && !r.Held {
		r.gateFailed(out, Decision{Check: schema.CheckFailureBudget, Observed: ptr(float64(len(failed))),
			Threshold: ptr(float64(r.Plan.Gates.FailureBudget)), Nodes: failed})
		return
	}
	if r.Paused || r.Held {
		return
	}
	inflight := 0
	for _, n := range wave {
		if n.Pending != nil {
			inflight++
		}
	}
	for _, n := range wave {
		if max := r.Plan.Waves.MaxInFlight; max > 0 && inflight >= max {
			break
		}
		if n.Pending != nil || n.Failure != "" || n.Reached == schema.ReachedActive {
			continue
		}
		kind := schema.CommandInstall
		if n.Reached == schema.ReachedInstalled {
			kind = schema.CommandActivate
		}
		r.send(out, n, kind)
		inflight++
	}
	for _, n := range wave {
		if n.Pending != nil || (n.Failure == "" && n.Reached != schema.ReachedActive) {
			return // the wave is still moving
		}
	}
	if r.SoakStarted.IsZero() {
		r.SoakStarted = r.Now
	}
	if r.Now.Sub(r.SoakStarted) < time.Duration(r.Plan.Gates.SoakSeconds)*time.Second {
		return
	}
	// A node that has not reported since it activated gets up to the ack
	// timeout to do so; after that it is unknown, never healthy. The same
	// holds for the registry report the parity check reads.
	if r.Registry.At.Before(r.SoakStarted) && r.Now.Sub(r.SoakStarted) < ackTimeout {
		return
	}
	for i := 0; i <= r.Wave; i++ {
		for _, n := range r.wave(i) {
			if n.Reached == schema.ReachedActive && n.HealthAt.Before(n.ActiveAt) && r.Now.Sub(n.ActiveAt) < ackTimeout {
				return
			}
		}
	}
	r.evaluateGate(out)
}

// evaluateGate checks, after the soak, every node moved so far.
func (r *Rollout) evaluateGate(out *Output) {
	g := r.Plan.Gates
	var moved []*Node
	for i := 0; i <= r.Wave; i++ {
		moved = append(moved, r.wave(i)...)
	}
	unhealthy := map[string]bool{}
	nhealthy := 0
	for _, n := range moved {
		if healthy(n) {
			nhealthy++
		} else {
			unhealthy[n.ID] = true
		}
	}
	ratio := float64(nhealthy) / float64(len(moved))
	if ratio < g.MinHealthyRatio {
		r.gateFailed(out, Decision{Check: schema.CheckHealthyRatio, Observed: ptr(ratio), Threshold: ptr(g.MinHealthyRatio), Nodes: sortedKeys(unhealthy)})
		return
	}
	rep := r.Registry
	if rep.At.Before(r.SoakStarted) || !rep.Reachable || !rep.Healthy || rep.Parity < g.MinParity {
		d := Decision{Check: schema.CheckParity, Observed: ptr(rep.Parity), Threshold: ptr(g.MinParity), Detail: rep.Detail}
		if rep.At.Before(r.SoakStarted) {
			d.Observed, d.Detail = nil, "no registry report during the soak (unknown)"
		}
		r.gateFailed(out, d)
		return
	}
	r.decide(out, Decision{Decision: schema.DecisionWavePassed, Check: schema.CheckHealthyRatio, Observed: ptr(ratio), Threshold: ptr(g.MinHealthyRatio),
		Detail: fmt.Sprintf("wave %d of %d (%s), parity %.3f", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Role, rep.Parity)})
	r.nextWave(out)
}

func (r *Rollout) nextWave(out *Output) {
	r.SoakStarted = time.Time{}
	if r.Wave+1 < len(r.Waves) {
		r.Wave++
		r.roll(out)
		return
	}
	// Commit only when every node of the plan is healthy on the new
	// interface, whatever the per-wave ratio allowed.
	unhealthy := map[string]bool{}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if !healthy(n) {
			unhealthy[n.ID] = true
		}
	}
	if len(unhealthy) > 0 {
		r.Wave = len(r.Waves) - 1
		ratio := 1 - float64(len(unhealthy))/float64(len(r.Nodes))
		r.gateFailed(out, Decision{Check: schema.CheckCommitAllHealthy, Observed: ptr(ratio), Threshold: ptr(1.0), Nodes: sortedKeys(unhealthy)})
		return
	}
	r.Phase = schema.PhaseCommitted
	r.decide(out, Decision{Decision: schema.DecisionCommitted, Check: schema.CheckCommitAllHealthy, Observed: ptr(1.0), Threshold: ptr(1.0),
		Detail: r.Plan.To.Name + " is primary on every node; " + r.Plan.From.Name + " dormant"})
	r.advance(out)
}

// gateFailed switches back or holds, as the plan says.
func (r *Rollout) gateFailed(out *Output, d Decision) {
	if r.Plan.Gates.OnFailure == OnFailurePause {
		d.Decision = schema.DecisionHeld
		d.Detail = fmt.Sprintf("wave %d: %s failed; resume re-evaluates after a soak, approve passes, abort switches back. %s", r.Wave+1, d.Check, d.Detail)
		r.Held = true
		r.decide(out, d)
		return
	}
	d.Decision = schema.DecisionSwitchBack
	d.Detail = fmt.Sprintf("wave %d: %s failed. %s", r.Wave+1, d.Check, d.Detail)
	r.decide(out, d)
	r.startSwitchBack(out)
}

func (r *Rollout) startSwitchBack(out *Output) {
	r.Phase, r.Stage, r.Held, r.Paused = schema.PhaseSwitchingBack, schema.RoleConsumer, false, false
	for i := range r.Nodes {
		n := &r.Nodes[i]
		// Stop re-sending install and activate. One already sent reaches the
		// agent before the switch-back (a node's commands share a partition),
		// so the node still ends on the old interface.
		n.Pending = nil
	}
	r.staged(out, schema.CommandSwitchBack, schema.ReachedSwitchedBack)
}

// staged sends kind to every node of the current stage (consumers, then
// providers) that has not reached step, re-sending pending ones, and moves to
// the next stage when the stage is done. Switch-back covers only touched
// nodes; finalize covers all. Neither gives up on a node: it is re-sent until
// it answers, because both must complete.
func (r *Rollout) staged(out *Output, kind schema.CommandKind, step Progress) {
	for {
		var stage []*Node
		for i := range r.Nodes {
			n := &r.Nodes[i]
			if provider(n) != (r.Stage == schema.RoleProvider) || (kind == schema.CommandSwitchBack && !n.Touched) {
				continue
			}
			stage = append(stage, n)
		}
		r.resend(out, stage)
		done := true
		for _, n := range stage {
			if n.Reached == step {
				continue
			}
			done = false
			if n.Pending == nil {
				r.send(out, n, kind)
			}
		}
		if !done {
			return
		}
		if r.Stage == schema.RoleConsumer {
			r.Stage = schema.RoleProvider
			continue
		}
		out.Bridge = BridgeStop
		if kind == schema.CommandSwitchBack {
			r.Phase = schema.PhaseSwitchedBack
			r.decide(out, Decision{Decision: schema.DecisionSwitchedBack, Detail: "every touched node is back on " + r.Plan.From.Name + "; bridge stopped"})
		} else {
			r.Phase = schema.PhaseFinalized
			r.decide(out, Decision{Decision: schema.DecisionFinalized, Detail: r.Plan.From.Name + " uninstalled everywhere; bridge stopped"})
		}
		r.Stage = ""
		return
	}
}

// resend sends again, with the same id, every pending command of nodes that
// waited a resend interval.
func (r *Rollout) resend(out *Output, nodes []*Node) {
	every := ResendEvery(r.Plan)
	for _, n := range nodes {
		if p := n.Pending; p != nil && r.Now.Sub(p.LastSent) >= every {
			p.LastSent = r.Now
			p.Sends++
			out.Commands = append(out.Commands, p.Command)
		}
	}
}

func (r *Rollout) send(out *Output, n *Node, kind schema.CommandKind) {
	c := r.command(n, kind)
	n.Pending = &Pending{Command: c, FirstSent: r.Now, LastSent: r.Now, Sends: 1}
	n.Touched = true
	out.Commands = append(out.Commands, c)
}

func (r *Rollout) wave(i int) []*Node {
	if len(r.waveNodes) != len(r.Waves) {
		r.waveNodes = make([][]*Node, len(r.Waves))
		for w, wv := range r.Waves {
			for _, id := range wv.Nodes {
				r.waveNodes[w] = append(r.waveNodes[w], r.Node(id))
			}
		}
	}
	return r.waveNodes[i]
}

// criticalIn reports whether the node is in the current wave and critical.
func (r *Rollout) criticalIn(node string) bool {
	n := r.Node(node)
	return n != nil && n.Wave == r.Wave && n.Health == schema.HealthCritical
}

// failedIn lists the wave's failed nodes: an ack failed, was refused or
// never came, or the node reported critical on the new interface since it
// activated. They count against the failure budget at once, without
// waiting for the soak: a broken registry is switched back from fast.
func (r *Rollout) failedIn(wave []*Node) []string {
	var ids []string
	for _, n := range wave {
		critical := n.Reached == schema.ReachedActive && n.Health == schema.HealthCritical && !n.HealthAt.Before(n.ActiveAt)
		if n.Failure != "" || critical {
			ids = append(ids, n.ID)
		}
	}
	return ids
}
