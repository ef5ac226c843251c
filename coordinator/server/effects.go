package server

import (
	"context"
	"fmt"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// fold steps one rollout and carries out what it asks.
func (o *owner) fold(ctx context.Context, r *coordinator.Rollout, in coordinator.Input) error {
	start := o.s.now()
	out := coordinator.Step(r, in)
	o.changed[r.ID] = true
	if len(out.Decisions) > 0 {
		o.s.m.decisionSeconds.Observe(o.s.now().Sub(start).Seconds())
	}
	return o.after(ctx, r, out)
}

// after persists the rollout before it sends the commands the record
// intends, then sends them and starts or stops the bridge. A step with no
// output only marks the rollout dirty: the tick persists it.
func (o *owner) after(ctx context.Context, r *coordinator.Rollout, out coordinator.Output) error {
	if len(out.Commands) == 0 && len(out.Decisions) == 0 && out.Bridge == "" {
		o.dirty[r.ID] = true
		return nil
	}
	if err := o.persist(ctx, r); err != nil {
		return err // retriable: the input is handled again
	}
	delete(o.dirty, r.ID)
	for _, d := range out.Decisions {
		if d.Check == schema.CheckAckTimeout {
			o.s.m.timedOut.Inc()
		}
		o.s.log.Info("decision", "rollout", r.ID, "decision", d.Decision, "check", d.Check, "observed", deref(d.Observed),
			"threshold", deref(d.Threshold), "nodes", d.Nodes, "detail", d.Detail)
	}
	if err := o.send(ctx, r, out.Commands); err != nil {
		return err
	}
	switch out.Bridge {
	case coordinator.BridgeStart:
		o.s.bridges.start(r)
	case coordinator.BridgeStop:
		o.s.bridges.stop(r.ID)
	}
	return nil
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// send signs and publishes commands, stamped with the leader's epoch.
func (o *owner) send(ctx context.Context, r *coordinator.Rollout, cmds []coordinator.Command) error {
	if len(cmds) == 0 {
		return nil
	}
	now := o.s.now().Truncate(time.Second)
	for _, c := range cmds {
		m, err := o.wire(r, c, now)
		if err != nil {
			return err
		}
		if err := o.publish(ctx, m); err != nil {
			return err
		}
		o.s.m.commands.WithLabelValues(string(c.Kind)).Inc()
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
	rec, err := o.enc.Encode(m)
	if err != nil {
		return err
	}
	return o.prod.Publish(ctx, rec)
}

// persist writes the rollout's record to the state topic and waits for it.
// The record is the rollout's own: coordinator.Rollout embeds
// schema.RolloutRecord, so nothing is converted and nothing can be lost.
func (o *owner) persist(ctx context.Context, r *coordinator.Rollout) error {
	return o.publish(ctx, &r.RolloutRecord)
}
