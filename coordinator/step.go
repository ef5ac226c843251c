package coordinator

import (
	"container/heap"
	"fmt"
	"slices"
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
//
// Cost: an ack, a health report or a hello is O(log n) plus the commands it
// lets out; a tick, a registry report or a request makes the level-
// triggered pass over the current wave (or stage), O(wave); a wave
// decision is O(nodes moved). Soaks end and gates are judged on that pass.
func Step(r *Rollout, in Input) Output {
	var out Output
	r.counted()
	if t := in.at(); t.After(r.Now) {
		r.Now = t
	}
	switch in := in.(type) {
	case AckIn:
		r.onAck(&out, in.Ack)
		r.react(&out)
	case HealthIn:
		r.onHealth(in.Health)
		r.react(&out)
	case HelloIn:
		r.onHello(in.Hello)
		r.react(&out)
	case RegistryIn:
		r.Registry = in.Report
		r.Registry.Epoch = r.Epoch // taken under this leader
		r.Registry.Detail = schema.Truncate(r.Registry.Detail, schema.MaxDetail)
		r.d.headDirty = true
		r.advance(&out)
	case RequestIn:
		r.onRequest(&out, in)
		r.advance(&out)
	default:
		r.advance(&out)
	}
	return out
}

func (r *Rollout) onAck(out *Output, a schema.Ack) {
	i, ok := r.nodeIndex(a.NodeID)
	if !ok {
		return
	}
	// An ack answers one send of a command of this rollout. Every send of
	// this rollout carried an epoch up to the current leader's (r.Epoch): a
	// new leader re-sends a pending command with its id and a higher epoch,
	// and the answer to an earlier send still counts. An ack claiming a
	// higher epoch answers a send this leader never made.
	switch {
	case a.RolloutID != r.ID:
		out.Refused = append(out.Refused, Refused{Node: a.NodeID, Command: a.CommandID, Why: RefusedOtherRollout,
			Detail: schema.Truncate(fmt.Sprintf("ack for rollout %q, this is %q", a.RolloutID, r.ID), schema.MaxDetail)})
		return
	case a.Epoch > r.Epoch:
		out.Refused = append(out.Refused, Refused{Node: a.NodeID, Command: a.CommandID, Why: RefusedFutureEpoch,
			Detail: fmt.Sprintf("ack of epoch %d, this leader's is %d", a.Epoch, r.Epoch)})
		return
	}
	n := &r.Nodes[i]
	if n.Pending == nil || n.Pending.Command.ID != a.CommandID {
		return // not for this rollout, or a duplicate of an answered command
	}
	cmd := n.Pending.Command
	if a.Outcome != schema.AckDone {
		failure := schema.Truncate(fmt.Sprintf("%s %s: %s", cmd.Kind, a.Outcome, a.Reason), schema.MaxDetail)
		if failure != n.Failure {
			r.decide(out, Decision{Decision: schema.DecisionNodeFailed, Check: schema.CheckAck, Nodes: []string{n.ID}, Detail: failure})
		}
		r.update(i, func(n *Node) {
			n.Failure = failure
			if cmd.Kind == schema.CommandInstall || cmd.Kind == schema.CommandActivate {
				n.Pending = nil // counts against the wave's failure budget
			}
			// A failed switch-back or uninstall stays pending and is re-sent
			// with its id: the agent did not record it as applied, so it
			// tries again. Both must complete.
		})
		return
	}
	r.update(i, func(n *Node) {
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
	})
}

func (r *Rollout) onHealth(h schema.Health) {
	i, ok := r.nodeIndex(h.NodeID)
	if !ok {
		return
	}
	for _, ih := range h.Interfaces {
		// A report that does not see the new interface active on an active
		// node was taken before the activation (a health report can pass
		// the activate's ack): it is no evidence of how the node does since.
		if ih.Name == r.Plan.To.Name && (r.Nodes[i].Reached != schema.ReachedActive || ih.State == schema.StateActive) {
			r.updateHealth(i, ih.Status, ih.Detail)
		}
	}
}

// onHello reconciles what a (re)started agent reports with what the
// coordinator believes: a node that lost the new interface is moved back so
// its install is sent again (same id: an agent that lost its state applies
// it; one that did not answers it as a duplicate), and a pending command the
// node has visibly carried out counts as answered.
func (r *Rollout) onHello(h schema.Hello) {
	i, ok := r.nodeIndex(h.NodeID)
	if !ok {
		return
	}
	n := &r.Nodes[i]
	state := schema.StateAbsent
	for _, is := range h.Interfaces {
		if is.Name == r.Plan.To.Name {
			state = is.State
		}
	}
	if (state == schema.StateAbsent || state == schema.StateRemoved) && n.Reached == schema.ReachedInstalled && r.Phase == schema.PhaseRolling {
		r.update(i, func(n *Node) { n.Reached = schema.ReachedNone })
	}
	if n.Pending == nil {
		return
	}
	switch k := n.Pending.Command.Kind; {
	case k == schema.CommandInstall && (state == schema.StateInstalled || state == schema.StateStandby):
		r.update(i, func(n *Node) { n.Pending, n.Reached = nil, schema.ReachedInstalled })
	case k == schema.CommandActivate && state == schema.StateActive:
		r.update(i, func(n *Node) { n.Pending, n.Reached, n.ActiveAt = nil, schema.ReachedActive, r.Now })
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
			for w := 0; w <= r.Wave; w++ {
				for _, i := range r.d.waves[w] {
					if n := &r.Nodes[i]; n.Reached != schema.ReachedActive && n.Failure != "" {
						r.update(i, func(n *Node) { n.Failure = "" })
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
		if r.halted() {
			refuse("held after a failed step, not by a gate: resume or abort")
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
		if r.Phase == schema.PhaseFinalized && r.BridgeKept {
			r.BridgeKept = false
			out.Bridge = BridgeStop
			r.decide(out, Decision{Decision: schema.DecisionBridgeEnded, Check: schema.CheckUnowned,
				Detail: "by " + q.By + "; its mirrors are removed from " + r.Plan.To.Name})
			return
		}
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

// react is what an ack, a health report or a hello can change at once:
// the failure budget (a broken registry is switched back from fast), the
// commands the wave or stage lets out next, and the soak's start. O(log n)
// plus what it sends; the soak's end and the gate wait for the next pass.
func (r *Rollout) react(out *Output) {
	switch r.Phase {
	case schema.PhaseRolling:
		if r.budgetBroken(out) || r.Paused || r.Held {
			return
		}
		r.pump(out)
		if r.d.unsettled == 0 && r.SoakStarted.IsZero() {
			r.SoakStarted = r.Now
			r.d.headDirty = true
		}
	case schema.PhaseSwitchingBack, schema.PhaseFinalizing:
		r.staged(out, false)
	}
}

// advance does what the rollout's phase calls for now. It is level-
// triggered: called on every tick, registry report and request, it sends
// whatever is missing.
func (r *Rollout) advance(out *Output) {
	switch r.Phase {
	case schema.PhasePreparing:
		r.prepare(out)
	case schema.PhaseRolling:
		r.roll(out)
	case schema.PhaseCommitted:
		if (r.Plan.Finalize == FinalizeAutomatic || r.FinalizeApproved) && !r.unownedRefuse(out) {
			r.Phase, r.Stage = schema.PhaseFinalizing, schema.RoleConsumer
			r.decide(out, Decision{Decision: schema.DecisionFinalizing, Detail: "uninstall " + r.Plan.From.Name + ": consumers first, then providers"})
			r.staged(out, true)
		}
	case schema.PhaseFinalizing, schema.PhaseSwitchingBack:
		r.staged(out, true)
	}
}

func (r *Rollout) prepare(out *Output) {
	if r.Paused {
		return
	}
	rep, g := r.Registry, r.Plan.Gates
	ok := r.registryEvidence(r.Created) && rep.Reachable && rep.Healthy && rep.BridgeRunning && rep.Parity >= g.MinParity
	if ok {
		detail := r.Plan.To.Name + " reachable and healthy, bridge running"
		if rep.Unowned > 0 {
			detail += fmt.Sprintf("; %d instances of %s no node of the plan registered (finalize: %s): %s",
				rep.Unowned, r.Plan.From.Name, r.Plan.UnownedPolicy(), rep.UnownedDetail)
		}
		r.decide(out, Decision{Decision: schema.DecisionPrepared, Check: schema.CheckParity, Observed: ptr(rep.Parity), Threshold: ptr(g.MinParity),
			Detail: detail})
		r.Phase, r.Wave = schema.PhaseRolling, 0
		r.roll(out)
		return
	}
	if r.Now.Sub(r.sinceTakeover(r.Created)) < time.Duration(g.AckTimeoutSeconds)*time.Second {
		return // give the registry side until the ack timeout
	}
	d := Decision{Decision: schema.DecisionPrepareFailed, Detail: rep.Detail}
	switch {
	case !r.registryEvidence(r.Created):
		d.Check, d.Detail = r.noRegistryEvidence("within the ack timeout")
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

// roll is the full pass over the current wave: time out and re-send pending
// commands, let the next ones out within max in flight, soak, and evaluate
// the gate.
func (r *Rollout) roll(out *Output) {
	r.counted()
	wave := r.d.waves[r.Wave]
	ackTimeout := time.Duration(r.Plan.Gates.AckTimeoutSeconds) * time.Second
	for _, i := range wave {
		if p := r.Nodes[i].Pending; p != nil && r.Now.Sub(r.sinceTakeover(p.FirstSent)) >= ackTimeout {
			failure := fmt.Sprintf("%s: no answer within %s", p.Command.Kind, ackTimeout)
			r.update(i, func(n *Node) { n.Pending, n.Failure = nil, failure })
			r.decide(out, Decision{Decision: schema.DecisionNodeUnknown, Check: schema.CheckAckTimeout, Nodes: []string{r.Nodes[i].ID}, Detail: failure})
		}
	}
	r.resend(out, wave)
	r.judgeExpired()
	if r.budgetBroken(out) || r.Paused || r.Held {
		return
	}
	r.pump(out)
	if r.d.unsettled > 0 {
		return // the wave is still moving
	}
	if r.SoakStarted.IsZero() {
		r.SoakStarted = r.Now
		r.d.headDirty = true
	}
	if r.Now.Sub(r.SoakStarted) < time.Duration(r.Plan.Gates.SoakSeconds)*time.Second {
		return
	}
	// A node that has not reported since it activated gets up to the ack
	// timeout to do so; after that it is unknown, never healthy. The same
	// holds for the registry report the parity check reads. A node not yet
	// healthy within its activation grace is waited for until the grace ends.
	if !r.registryEvidence(r.SoakStarted) && r.Now.Sub(r.sinceTakeover(r.SoakStarted)) < ackTimeout {
		return
	}
	for w := 0; w <= r.Wave; w++ {
		for _, i := range r.d.waves[w] {
			n := &r.Nodes[i]
			if n.Reached != schema.ReachedActive {
				continue
			}
			if n.HealthAt.Before(n.ActiveAt) && r.Now.Sub(r.sinceTakeover(n.ActiveAt)) < ackTimeout || !healthy(n) && !r.graceOver(i) {
				return
			}
		}
	}
	r.evaluateGate(out)
}

// budgetBroken fails the gate when the wave's failed nodes — an ack failed,
// was refused or never came, or the node reported critical on the new
// interface since it activated — pass the failure budget. They count at
// once, without waiting for the soak: a broken registry is switched back
// from fast.
func (r *Rollout) budgetBroken(out *Output) bool {
	if len(r.d.failed) <= r.Plan.Gates.FailureBudget || r.Held {
		return false
	}
	failed := r.failedIDs()
	r.gateFailed(out, Decision{Check: schema.CheckFailureBudget, Observed: ptr(float64(len(failed))),
		Threshold: ptr(float64(r.Plan.Gates.FailureBudget)), Nodes: failed, Detail: r.reasons(failed)})
	return true
}

// pump sends the next command to the wave's ready nodes, earliest in the
// wave first, within max in flight.
func (r *Rollout) pump(out *Output) {
	for r.d.ready.Len() > 0 {
		if max := r.Plan.Waves.MaxInFlight; max > 0 && r.d.inflight >= max {
			return
		}
		i := heap.Pop(&r.d.ready).(int)
		r.d.queued[i] = false
		if !r.contrib(i).ready {
			continue // answered or failed since it was queued
		}
		kind := schema.CommandInstall
		if r.Nodes[i].Reached == schema.ReachedInstalled {
			kind = schema.CommandActivate
		}
		r.send(out, i, kind)
	}
}

// evaluateGate checks, after the soak, every node moved so far.
func (r *Rollout) evaluateGate(out *Output) {
	g := r.Plan.Gates
	var unhealthy []string
	moved := 0
	for w := 0; w <= r.Wave; w++ {
		for _, i := range r.d.waves[w] {
			moved++
			if !healthy(&r.Nodes[i]) {
				unhealthy = append(unhealthy, r.Nodes[i].ID)
			}
		}
	}
	slices.Sort(unhealthy)
	ratio := float64(moved-len(unhealthy)) / float64(moved)
	if ratio < g.MinHealthyRatio {
		r.gateFailed(out, Decision{Check: schema.CheckHealthyRatio, Observed: ptr(ratio), Threshold: ptr(g.MinHealthyRatio), Nodes: unhealthy,
			Detail: r.reasons(unhealthy)})
		return
	}
	rep := r.Registry
	if !r.registryEvidence(r.SoakStarted) || !rep.Reachable || !rep.Healthy || rep.Parity < g.MinParity {
		d := Decision{Check: schema.CheckParity, Observed: ptr(rep.Parity), Threshold: ptr(g.MinParity), Detail: rep.Detail}
		if !r.registryEvidence(r.SoakStarted) {
			d.Observed = nil
			d.Check, d.Detail = r.noRegistryEvidence("during the soak")
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
	r.d.headDirty = true
	if r.Wave+1 < len(r.Waves) {
		r.Wave++
		r.roll(out)
		return
	}
	// Commit only when every node of the plan is healthy on the new
	// interface, whatever the per-wave ratio allowed.
	var unhealthy []string
	for i := range r.Nodes {
		if !healthy(&r.Nodes[i]) {
			unhealthy = append(unhealthy, r.Nodes[i].ID)
		}
	}
	if len(unhealthy) > 0 {
		slices.Sort(unhealthy)
		r.Wave = len(r.Waves) - 1
		ratio := 1 - float64(len(unhealthy))/float64(len(r.Nodes))
		r.gateFailed(out, Decision{Check: schema.CheckCommitAllHealthy, Observed: ptr(ratio), Threshold: ptr(1.0), Nodes: unhealthy,
			Detail: r.reasons(unhealthy)})
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
	r.d.headDirty = true
	for i := range r.Nodes {
		// Stop re-sending install and activate. One already sent reaches the
		// agent before the switch-back (a node's commands share a partition),
		// so the node still ends on the old interface.
		if r.Nodes[i].Pending != nil {
			r.update(i, func(n *Node) { n.Pending = nil })
		}
	}
	r.staged(out, true)
}

// stagedKind is the command of the current staged phase and the progress
// it brings a node to.
func (r *Rollout) stagedKind() (schema.CommandKind, Progress) {
	if r.Phase == schema.PhaseSwitchingBack {
		return schema.CommandSwitchBack, schema.ReachedSwitchedBack
	}
	return schema.CommandUninstall, schema.ReachedUninstalled
}

// inStage: the node is of the current stage's role (consumers, then
// providers); switch-back covers only touched nodes, finalize all.
func (r *Rollout) inStage(n *Node, kind schema.CommandKind) bool {
	return provider(n) == (r.Stage == schema.RoleProvider) && (kind != schema.CommandSwitchBack || n.Touched)
}

// staged sends the phase's command to every node of the current stage that
// has not reached its step — on a full pass, re-sending pending ones too —
// and moves to the next stage when the stage is done. Neither switch-back
// nor finalize gives up on a node: it is re-sent until it answers, because
// both must complete. An ack costs O(1) here; a full pass, or a new stage,
// O(nodes).
func (r *Rollout) staged(out *Output, full bool) {
	kind, step := r.stagedKind()
	for {
		r.counted()
		if full {
			every := ResendEvery(r.Plan)
			for i := range r.Nodes {
				n := &r.Nodes[i]
				switch {
				case !r.inStage(n, kind) || n.Reached == step:
				case n.Pending == nil:
					r.send(out, i, kind)
				case r.Now.Sub(n.Pending.LastSent) >= every:
					r.resendOne(out, i)
				}
			}
		}
		if r.d.stageRemaining > 0 {
			return
		}
		if r.Stage == schema.RoleConsumer {
			r.Stage = schema.RoleProvider
			r.d.headDirty = true
			full = true // a new stage: send to all of it
			continue
		}
		if kind == schema.CommandSwitchBack {
			out.Bridge = BridgeStop
			r.Phase = schema.PhaseSwitchedBack
			r.decide(out, Decision{Decision: schema.DecisionSwitchedBack, Detail: "every touched node is back on " + r.Plan.From.Name + "; bridge stopped"})
		} else {
			r.Phase = schema.PhaseFinalized
			r.decide(out, Decision{Decision: schema.DecisionFinalized, Detail: r.Plan.From.Name + " uninstalled everywhere"})
			r.finalizeBridge(out)
		}
		r.Stage = ""
		return
	}
}

// resend sends again, with the same id, every pending command of the nodes
// that waited a resend interval.
func (r *Rollout) resend(out *Output, nodes []int) {
	every := ResendEvery(r.Plan)
	for _, i := range nodes {
		if p := r.Nodes[i].Pending; p != nil && r.Now.Sub(p.LastSent) >= every {
			r.resendOne(out, i)
		}
	}
}

func (r *Rollout) resendOne(out *Output, i int) {
	r.update(i, func(n *Node) {
		n.Pending.LastSent = r.Now
		n.Pending.Sends++
	})
	out.Commands = append(out.Commands, r.Nodes[i].Pending.Command)
}

func (r *Rollout) send(out *Output, i int, kind schema.CommandKind) {
	c := r.command(&r.Nodes[i], kind)
	r.update(i, func(n *Node) {
		n.Pending = &Pending{Command: c, FirstSent: r.Now, LastSent: r.Now, Sends: 1}
		n.Touched = true
	})
	out.Commands = append(out.Commands, c)
}

// registryEvidence reports whether the registry report may judge a gate:
// taken at or after since, under this leader (a report of an earlier leader
// describes a bridge that is gone), by a bridge that had converged — its
// first full sync done and every compared service synced — so that what is
// missing is missing because of the fleet, not because the bridge is still
// catching up after a start or a failover.
func (r *Rollout) registryEvidence(since time.Time) bool {
	rep := r.Registry
	return !rep.At.IsZero() && !rep.At.Before(since) && rep.Epoch == r.Epoch && rep.BridgeConverged
}

// sinceTakeover is when a wait for evidence (the ack timeout) that began at
// since is counted from: since, or the leader's takeover when that is
// later. A new leader has read no ack or health report yet (health is not
// persisted, and its events consumer gets its partitions only once the dead
// leader's group session expires), and no coordinator counted anything
// while none ran: an ack, a node's health and the registry side each get
// the ack timeout again from the takeover.
func (r *Rollout) sinceTakeover(since time.Time) time.Time {
	if r.EpochSince.After(since) {
		return r.EpochSince
	}
	return since
}

// noRegistryEvidence names why the registry report could not judge a gate.
func (r *Rollout) noRegistryEvidence(when string) (schema.Check, string) {
	rep := r.Registry
	if !rep.At.IsZero() && rep.Epoch == r.Epoch && !rep.BridgeConverged {
		return schema.CheckBridge, schema.Truncate("the bridge had not converged "+when+": "+rep.Detail, schema.MaxDetail)
	}
	return schema.CheckRegistry, "no registry report " + when + " (unknown)"
}

// unownedRefuse holds a finalize back under the refuse policy while the old
// registry holds instances no node of the plan registered, or while no
// converged report of this leader says it holds none; it records why once
// per distinct reason (not on every pass).
func (r *Rollout) unownedRefuse(out *Output) bool {
	if r.Plan.UnownedPolicy() != schema.UnownedRefuse {
		return false
	}
	rep := r.Registry
	var detail string
	switch {
	case !r.registryEvidence(time.Time{}):
		detail = "unowned instances of " + r.Plan.From.Name + " not known yet: waiting for a converged registry report"
	case rep.Unowned > 0:
		detail = fmt.Sprintf("%d instances of %s no node of the plan registered (unowned: refuse): %s",
			rep.Unowned, r.Plan.From.Name, rep.UnownedDetail)
	default:
		return false
	}
	d := Decision{Decision: schema.DecisionFinalizeRefused, Check: schema.CheckUnowned, Detail: schema.Truncate(detail, schema.MaxDetail)}
	if n := len(r.Decisions); n == 0 || r.Decisions[n-1].Decision != d.Decision || r.Decisions[n-1].Detail != d.Detail {
		if rep.Unowned > 0 {
			d.Observed, d.Threshold = ptr(float64(rep.Unowned)), ptr(0)
		}
		r.decide(out, d)
	}
	return true
}

// finalizeBridge ends the bridge at finalize, unless the plan keeps it for
// unowned instances: then it runs on (BridgeKept) — also when no converged
// report of this leader has counted them, as none may be lost — until a
// second finalize ends it.
func (r *Rollout) finalizeBridge(out *Output) {
	rep := r.Registry
	known := r.registryEvidence(time.Time{})
	if r.Plan.UnownedPolicy() != schema.UnownedKeepBridge || known && rep.Unowned == 0 {
		out.Bridge = BridgeStop
		return
	}
	r.BridgeKept = true
	detail := "the count is not known yet"
	if known {
		detail = fmt.Sprintf("%d of them: %s", rep.Unowned, rep.UnownedDetail)
	}
	r.decide(out, Decision{Decision: schema.DecisionBridgeKept, Check: schema.CheckUnowned,
		Detail: "the bridge keeps mirroring " + r.Plan.From.Name + " instances no node of the plan registered (unowned: keep-bridge; finalize again to end it); " + detail})
}
