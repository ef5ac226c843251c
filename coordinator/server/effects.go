package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// effects are what the steps of one job (a batch of inputs, or a tick)
// asked for, carried out together by flush: the state records first, then
// the commands, then the bridges — so a command is never out before the
// record that intends it.
type effects struct {
	touched   map[string]*coordinator.Rollout // rollouts stepped: their dirty records are written
	commands  []sendCommand
	decisions []logDecision
	bridges   []bridgeAction
}

type sendCommand struct {
	r *coordinator.Rollout
	c coordinator.Command
}

type logDecision struct {
	id string
	d  coordinator.Decision
}

type bridgeAction struct {
	r *coordinator.Rollout
	a coordinator.BridgeAction
}

// fold steps one rollout and keeps what it asks for until flush. A step
// that panics holds that rollout (coordinator.Rollout.Halt, the panic's
// value in the decision) and the others go on; until a request clears the
// hold — resume, or abort — only requests are folded into it.
func (o *owner) fold(r *coordinator.Rollout, in coordinator.Input) {
	_, request := in.(coordinator.RequestIn)
	if o.stalled[r.ID] && !request {
		return
	}
	start := o.s.now()
	out, failed := o.step(r, in)
	if failed != "" {
		o.s.m.stepPanics.Inc()
		o.s.log.Error("a step panicked: rollout held", "rollout", r.ID, "input", fmt.Sprintf("%T", in), "panic", failed)
		out = r.Halt(failed)
		o.stalled[r.ID] = true
	} else if !r.Held {
		delete(o.stalled, r.ID)
	}
	if len(out.Decisions) > 0 {
		o.s.m.decisionSeconds.Observe(o.s.now().Sub(start).Seconds())
	}
	o.changed[r.ID] = true
	o.fx.touched[r.ID] = r
	for _, c := range out.Commands {
		o.fx.commands = append(o.fx.commands, sendCommand{r, c})
	}
	for _, d := range out.Decisions {
		o.fx.decisions = append(o.fx.decisions, logDecision{r.ID, d})
	}
	if out.Bridge != "" {
		o.fx.bridges = append(o.fx.bridges, bridgeAction{r, out.Bridge})
	}
	for _, x := range out.Refused {
		o.s.m.refused.WithLabelValues(string(x.Why)).Inc()
		o.s.log.Warn("input refused", "rollout", r.ID, "node", x.Node, "command", x.Command, "reason", x.Why, "detail", x.Detail)
	}
}

// step is one coordinator step that recovers a panic: failed is then the
// panic's value (within schema.MaxDetail), and the step's commands are
// dropped.
func (o *owner) step(r *coordinator.Rollout, in coordinator.Input) (out coordinator.Output, failed string) {
	defer func() {
		if v := recover(); v != nil {
			out, failed = coordinator.Output{}, schema.Truncate(fmt.Sprint(v), schema.MaxDetail)
			if failed == "" {
				failed = "panic"
			}
		}
	}()
	return o.s.step(r, in), ""
}

// flush writes the dirty records of every rollout stepped since the last
// flush and waits for them, then sends the commands, then starts or stops
// bridges. When the records cannot be written, they stay dirty and the
// commands are not sent: the input is handled again (a consumer retries)
// or the next tick's flush writes them and the resend sends the commands.
func (o *owner) flush(ctx context.Context) error {
	fx := o.fx
	o.fx = newEffects()
	if err := o.persist(ctx, slices.Collect(maps.Values(fx.touched))...); err != nil {
		return err
	}
	for _, d := range fx.decisions {
		if d.d.Check == schema.CheckAckTimeout {
			o.s.m.timedOut.Inc()
		}
		o.s.log.Info("decision", "rollout", d.id, "decision", d.d.Decision, "check", d.d.Check, "observed", deref(d.d.Observed),
			"threshold", deref(d.d.Threshold), "nodes", d.d.Nodes, "node_count", d.d.NodeCount, "detail", d.d.Detail)
	}
	if err := o.send(ctx, fx.commands); err != nil {
		return err
	}
	for _, b := range fx.bridges {
		switch b.a {
		case coordinator.BridgeStart:
			o.s.bridges.start(b.r)
		case coordinator.BridgeStop:
			o.s.bridges.stop(b.r.ID, true)
		}
	}
	return nil
}

func newEffects() effects { return effects{touched: map[string]*coordinator.Rollout{}} }

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// persist writes the dirty records of the rollouts — each head, then its
// nodes — and after them the requests handled since the last write, in one
// publish, and waits for all of them. On failure the records are marked
// dirty again.
func (o *owner) persist(ctx context.Context, rs ...*coordinator.Rollout) error {
	var msgs []schema.Message
	taken := make([]coordinator.Dirty, len(rs))
	for k, r := range rs {
		taken[k] = r.TakeDirty()
		if taken[k].Head {
			msgs = append(msgs, &r.RolloutRecord)
		}
		for _, i := range taken[k].Nodes {
			n := r.NodeRecord(i)
			msgs = append(msgs, &n)
		}
	}
	seen, written := o.seen.toWrite()
	msgs = append(msgs, seen...)
	if len(msgs) == 0 {
		return nil
	}
	size, err := o.prod.Send(ctx, o.enc, msgs...)
	if err != nil {
		for k, d := range taken {
			rs[k].MarkDirty(d)
		}
		return fmt.Errorf("persist: %w", err)
	}
	written()
	o.s.m.stateBytes.Add(float64(size))
	o.s.m.stateRecords.Add(float64(len(msgs)))
	return nil
}

// send signs and publishes commands, stamped with the leader's epoch, in
// one publish.
func (o *owner) send(ctx context.Context, cmds []sendCommand) error {
	if len(cmds) == 0 {
		return nil
	}
	now := o.s.now().Truncate(time.Second)
	msgs := make([]schema.Message, 0, len(cmds))
	for _, sc := range cmds {
		m, err := o.wire(sc.r, sc.c, now)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if _, err := o.prod.Send(ctx, o.enc, msgs...); err != nil {
		return err
	}
	for _, sc := range cmds {
		o.s.m.commands.WithLabelValues(string(sc.c.Kind)).Inc()
	}
	return nil
}

// wire is the signed message of a command.
func (o *owner) wire(r *coordinator.Rollout, c coordinator.Command, now time.Time) (schema.Command, error) {
	h := schema.CommandHeader{NodeID: c.Node, CommandID: c.ID, RolloutID: r.ID, Epoch: r.Epoch,
		IssuedAt: now, ExpiresAt: now.Add(o.s.cfg.CommandTTL), PackageDigest: r.Plan.To.Package.Digest}
	switch c.Kind {
	case schema.CommandInstall:
		return &schema.Install{CommandHeader: h, Interface: r.Plan.To}, nil
	case schema.CommandActivate:
		return &schema.Activate{CommandHeader: h, Interface: c.Interface}, nil
	case schema.CommandSwitchBack:
		return &schema.SwitchBack{CommandHeader: h, From: c.Interface, To: c.To, Reason: "rollout " + r.ID + " switches back"}, nil
	case schema.CommandUninstall:
		return &schema.Uninstall{CommandHeader: h, Interface: c.Interface}, nil
	}
	return nil, fmt.Errorf("unknown command kind %q", c.Kind)
}

func (o *owner) publish(ctx context.Context, m schema.Message) error {
	_, err := o.prod.Send(ctx, o.enc, m)
	return err
}
