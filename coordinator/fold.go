package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/regshift/regshift/schema"
)

// fold steps one rollout and carries out what it asks. Call with rt.mu held.
func (rt *Runtime) fold(ctx context.Context, r *Rollout, in Input) error {
	start := time.Now()
	out := Step(r, in)
	if len(out.Decisions) > 0 {
		rt.m.decisionSeconds.Observe(time.Since(start).Seconds())
	}
	return rt.after(ctx, r, out)
}

// after persists the rollout before it sends the commands the record
// intends, then sends them and starts or stops the bridge. A step with no
// output only marks the rollout dirty: the tick persists it.
func (rt *Runtime) after(ctx context.Context, r *Rollout, out Output) error {
	if len(out.Commands) == 0 && len(out.Decisions) == 0 && out.Bridge == "" {
		rt.dirty[r.ID] = true
		return nil
	}
	if err := rt.persist(ctx, r); err != nil {
		return err // retriable: the input is handled again
	}
	delete(rt.dirty, r.ID)
	for _, d := range out.Decisions {
		if d.Check == "ack-timeout" {
			rt.m.timedOut.Inc()
		}
		rt.log.Info("decision", "rollout", r.ID, "decision", d.Decision, "check", d.Check, "observed", deref(d.Observed),
			"threshold", deref(d.Threshold), "nodes", d.Nodes, "detail", d.Detail)
	}
	if err := rt.send(ctx, r, out.Commands); err != nil {
		return err
	}
	switch out.Bridge {
	case BridgeStart:
		rt.startBridge(r)
	case BridgeStop:
		rt.stopBridge(r.ID)
	}
	rt.m.observe(rt.rollouts)
	return nil
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// send signs and publishes commands, stamped with the leader's epoch.
func (rt *Runtime) send(ctx context.Context, r *Rollout, cmds []Command) error {
	if len(cmds) == 0 {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, c := range cmds {
		m, err := rt.wire(r, c, now)
		if err != nil {
			return err
		}
		if err := rt.publish(ctx, m); err != nil {
			return err
		}
		rt.m.commands.WithLabelValues(c.Kind).Inc()
	}
	return nil
}

// wire is the signed message of a command.
func (rt *Runtime) wire(r *Rollout, c Command, now time.Time) (schema.Command, error) {
	h := schema.CommandHeader{NodeID: c.Node, CommandID: c.ID, RolloutID: r.ID, Epoch: r.Epoch,
		IssuedAt: now, ExpiresAt: now.Add(rt.cfg.CommandTTL), PackageDigest: r.Plan.To.Package.Digest}
	switch c.Kind {
	case KindInstall:
		return &schema.Install{CommandHeader: h, Interface: r.Plan.To}, nil
	case KindActivate:
		return &schema.Activate{CommandHeader: h, Interface: c.Interface}, nil
	case KindSwitchBack:
		return &schema.SwitchBack{CommandHeader: h, From: c.Interface, To: c.To, Reason: "rollout " + r.ID + " switches back"}, nil
	case KindUninstall:
		return &schema.Uninstall{CommandHeader: h, Interface: c.Interface}, nil
	}
	return nil, fmt.Errorf("unknown command kind %q", c.Kind)
}

func (rt *Runtime) publish(ctx context.Context, m schema.Message) error {
	rec, err := rt.enc.Encode(m)
	if err != nil {
		return err
	}
	return rt.prod.Publish(ctx, rec)
}

// persist writes the rollout's record to the state topic and waits for it.
func (rt *Runtime) persist(ctx context.Context, r *Rollout) error {
	rec, err := toRecord(r)
	if err != nil {
		return err
	}
	return rt.publish(ctx, rec)
}

// toRecord and fromRecord convert between the core's Rollout and the
// state topic's record, which has the same JSON shape.
func toRecord(r *Rollout) (*schema.RolloutRecord, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var rec schema.RolloutRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func fromRecord(rec *schema.RolloutRecord) (*Rollout, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var r Rollout
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) { return maps.Keys(m) }
