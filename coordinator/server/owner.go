package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// owner is the one goroutine that holds the rollouts while this replica
// leads (controller-runtime's manager, raft's node loop): inputs come in on
// a channel, it steps the rollouts and carries out their effects (persist,
// send, start or stop a bridge) in order, and it publishes immutable
// snapshots for the API. Nothing else reads or writes its fields, so there
// is no lock to hold across I/O: a publish that retries for minutes delays
// the rollouts, never the API or /healthz.
type owner struct {
	s     *Server
	prod  *events.Producer
	enc   *events.Encoder
	epoch uint64

	inputs   chan job
	rollouts map[string]*coordinator.Rollout
	fx       effects         // what the steps of the current job asked for
	changed  map[string]bool // stepped since the last snapshot
	lastView time.Time

	// The rollouts replay quarantined (fixed while this replica leads): by
	// id, the first maxQuarantineListed for the API's list, and the nodes
	// of those not ended, which no new rollout may take.
	quarantined      map[string]*Summary
	quarantineListed []Summary
	quarantinedNodes map[string]string // node id -> rollout id

	// stalled are the rollouts held after their step panicked: only
	// requests are folded into them until one clears the hold.
	stalled map[string]bool

	seen seenRequests
}

// job is one input, or a batch of them: run on the owner goroutine, then
// its effects are flushed; the error of either goes back to whoever
// submitted it (a consumer retries or dead-letters on it).
type job struct {
	run  func(ctx context.Context) error
	done chan error
}

// viewEvery is how often, at most, the owner publishes a snapshot: the
// first change after a quiet spell is published at once, a burst of inputs
// at most this often (a snapshot copies every changed rollout), so the API
// is never more than this stale.
const viewEvery = 200 * time.Millisecond

func newOwner(s *Server, prod *events.Producer, epoch uint64) *owner {
	return &owner{s: s, prod: prod, epoch: epoch, inputs: make(chan job),
		enc:      &events.Encoder{Topics: s.topics, Source: "regshift/coordinator/" + s.cfg.ID, Signer: s.signer},
		rollouts: map[string]*coordinator.Rollout{}, fx: newEffects(), changed: map[string]bool{},
		quarantined: map[string]*Summary{}, quarantinedNodes: map[string]string{}, stalled: map[string]bool{}, seen: newSeenRequests()}
}

// quarantine takes the rollouts replay refused.
func (o *owner) quarantine(q map[string]quarantined) {
	for id, e := range q {
		o.quarantined[id] = &e.summary
		if e.summary.Phase.Ended() {
			continue
		}
		for _, n := range e.nodes {
			o.quarantinedNodes[n] = id
		}
	}
	o.quarantineListed = listQuarantine(q)
}

// run owns the rollouts until ctx ends.
func (o *owner) run(ctx context.Context) error {
	t := time.NewTicker(o.s.cfg.Tick)
	defer t.Stop()
	var flush <-chan time.Time // set while changes wait for the next view
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-o.inputs:
			err := j.run(ctx)
			if ferr := o.flush(ctx); err == nil {
				err = ferr
			}
			j.done <- err
		case <-t.C:
			o.tick(ctx)
		case <-flush:
			flush = nil
			o.publishView()
		}
		if len(o.changed) > 0 && flush == nil {
			if wait := viewEvery - o.s.now().Sub(o.lastView); wait > 0 {
				flush = time.After(wait)
			} else {
				o.publishView()
			}
		}
	}
}

// submit hands run to the owner and waits for its result.
func (o *owner) submit(ctx context.Context, run func(ctx context.Context) error) error {
	j := job{run: run, done: make(chan error, 1)}
	select {
	case o.inputs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *owner) tick(ctx context.Context) {
	now := o.s.now()
	for _, r := range o.active() {
		o.fold(r, coordinator.Tick{Now: now})
	}
	o.seen.expire(now)
	if err := o.flush(ctx); err != nil && ctx.Err() == nil {
		o.s.log.Warn("tick", "err", err)
	}
	if keys, deleted := o.seen.toDelete(); len(keys) > 0 {
		if err := o.prod.Delete(ctx, o.s.topics.State, keys...); err != nil {
			o.s.log.Warn("delete expired request ids", "records", len(keys), "err", err) // the next tick tries again
		} else {
			deleted()
		}
	}
}

// active lists the rollouts not yet ended, in id order.
func (o *owner) active() []*coordinator.Rollout {
	var out []*coordinator.Rollout
	for _, id := range slices.Sorted(maps.Keys(o.rollouts)) {
		if r := o.rollouts[id]; !r.Phase.Ended() {
			out = append(out, r)
		}
	}
	return out
}

// handleEvents folds a batch of acks, health reports and hellos, in order,
// into the rollouts that involve their nodes: one owner job, so one write
// of the dirty records and one publish of the commands for the whole batch.
// When the write fails every delivery gets the error and the batch is
// handed again (folding an event twice changes nothing: an answered
// command is no longer pending, health and hello are idempotent).
func (o *owner) handleEvents(ctx context.Context, ds []events.Delivery) []error {
	now := o.s.now()
	type input struct {
		node string
		in   coordinator.Input
	}
	ins := make([]input, 0, len(ds))
	for _, d := range ds {
		switch m := d.Message.(type) {
		case *schema.Ack:
			ins = append(ins, input{m.NodeID, coordinator.AckIn{Now: now, Ack: *m}})
			o.s.m.acks.WithLabelValues(string(m.Outcome)).Inc()
		case *schema.Health:
			ins = append(ins, input{m.NodeID, coordinator.HealthIn{Now: now, Health: *m}})
		case *schema.Hello:
			ins = append(ins, input{m.NodeID, coordinator.HelloIn{Now: now, Hello: *m}})
		}
	}
	err := o.submit(ctx, func(context.Context) error {
		active := o.active()
		for _, in := range ins {
			for _, r := range active {
				if r.Node(in.node) != nil {
					o.fold(r, in.in)
				}
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	errs := make([]error, len(ds))
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// handleRequest creates a rollout or steers one, once: a request whose id
// was handled within its validity window is dropped (ReasonDuplicate:
// counted, not dead-lettered), here or after a failover, as the state
// topic remembers it. An id counts as handled once the request was acted
// on or refused for good; one whose records could not be written is handed
// again by the consumer and handled afresh.
func (o *owner) handleRequest(ctx context.Context, d events.Delivery) error {
	now := o.s.now()
	req := d.Message.(schema.Request)
	h := req.Requested()
	seen := schema.SeenRequest{RequestID: h.RequestID, RolloutID: h.RolloutID, Kind: req.RequestKind(), RequestedBy: h.RequestedBy,
		RequestedAt: h.RequestedAt, ExpiresAt: o.s.requests.AcceptedUntil(h.RequestedAt).Add(o.s.requests.MaxSkew)}
	return o.submit(ctx, func(ctx context.Context) error {
		if first, ok := o.seen.get(h.RequestID); ok {
			o.s.log.Warn("request dropped: its id was handled already", "request", h.RequestID, "kind", seen.Kind, "rollout", h.RolloutID,
				"by", h.RequestedBy, "first_requested_at", first.RequestedAt, "remembered_until", first.ExpiresAt)
			return &events.RejectError{Reason: events.ReasonDuplicate, Err: fmt.Errorf("request %s was handled already", h.RequestID)}
		}
		if o.seen.full() {
			return fmt.Errorf("request %s: %d requests handled within their validity window already; refused until some expire",
				h.RequestID, schema.MaxSeenRequests)
		}
		err := o.request(ctx, req, now)
		if err == nil || !events.Retriable(err) {
			o.seen.add(seen)
		}
		return err
	})
}

// request carries out a request on the owner goroutine.
func (o *owner) request(ctx context.Context, req schema.Request, now time.Time) error {
	h := req.Requested()
	if c, ok := req.(*schema.CreateRollout); ok {
		return o.create(ctx, h, c.Plan, now)
	}
	r, ok := o.rollouts[h.RolloutID]
	if !ok {
		return fmt.Errorf("request %s: no rollout %s", h.RequestID, h.RolloutID)
	}
	in := coordinator.RequestIn{Now: now, By: h.RequestedBy, Kind: req.RequestKind()}
	if a, ok := req.(*schema.Approve); ok {
		in.Wave = a.Wave
	}
	o.fold(r, in)
	return nil
}

// create makes a rollout of a plan. It becomes visible — in the API, to
// later creates naming its nodes, to the next leader — only once its
// records are written.
func (o *owner) create(ctx context.Context, h schema.RequestHeader, p schema.Plan, now time.Time) error {
	if _, exists := o.rollouts[h.RolloutID]; exists {
		o.s.log.Info("create of an existing rollout ignored", "rollout", h.RolloutID, "request", h.RequestID)
		return nil
	}
	if q, ok := o.quarantined[h.RolloutID]; ok {
		return fmt.Errorf("rollout %s is quarantined: %s", h.RolloutID, q.Quarantined)
	}
	for _, other := range o.active() {
		for _, n := range p.Nodes {
			if other.Node(n.NodeID) != nil {
				return fmt.Errorf("rollout %s: node %s is already in active rollout %s", h.RolloutID, n.NodeID, other.ID)
			}
		}
	}
	for _, n := range p.Nodes {
		if q, ok := o.quarantinedNodes[n.NodeID]; ok {
			return fmt.Errorf("rollout %s: node %s is in quarantined rollout %s", h.RolloutID, n.NodeID, q)
		}
	}
	r, out, err := coordinator.NewRollout(h.RolloutID, p, o.epoch, now)
	if err != nil {
		return fmt.Errorf("rollout %s: %w", h.RolloutID, err) // dead-lettered with the reason
	}
	if err := o.persist(ctx, &r); err != nil {
		return fmt.Errorf("rollout %s: %w", h.RolloutID, err)
	}
	o.rollouts[r.ID] = &r
	o.changed[r.ID] = true
	o.s.log.Info("rollout created", "rollout", r.ID, "by", h.RequestedBy, "nodes", len(r.Nodes))
	for _, d := range out.Decisions {
		o.fx.decisions = append(o.fx.decisions, logDecision{r.ID, d})
	}
	if out.Bridge != "" {
		o.fx.bridges = append(o.fx.bridges, bridgeAction{&r, out.Bridge})
	}
	return nil
}

// report folds a registry measurement into the rollout it was made for.
func (o *owner) report(ctx context.Context, id string, rep coordinator.RegistryReport) error {
	return o.submit(ctx, func(context.Context) error {
		if r, ok := o.rollouts[id]; ok && !r.Phase.Ended() {
			o.fold(r, coordinator.RegistryIn{Now: rep.At, Report: rep})
		}
		return nil
	})
}
