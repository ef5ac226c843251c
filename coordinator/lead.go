package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// errDeposed ends leading when another replica claimed a higher epoch.
var errDeposed = errors.New("coordinator: deposed by a higher epoch")

// lead replays the state topic, claims the next epoch and runs the
// rollouts until ctx ends or a higher claim appears.
func (rt *Runtime) lead(ctx context.Context) error {
	records, highest, end, err := rt.replay(ctx)
	if err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	epoch := highest + 1
	claim := &schema.EpochRecord{Epoch: epoch, Leader: rt.cfg.ID, AcquiredAt: time.Now().UTC()}
	if err := rt.publish(ctx, claim); err != nil {
		return fmt.Errorf("claim epoch %d: %w", epoch, err)
	}
	rt.mu.Lock()
	rt.leading, rt.epoch = true, epoch
	rt.rollouts = map[string]*Rollout{}
	for id, r := range records {
		r.Epoch = epoch // every command from now on carries the new epoch
		rt.rollouts[id] = r
	}
	rt.mu.Unlock()
	rt.m.leader.Set(1)
	rt.log.Info("leading", "epoch", epoch, "rollouts", len(records))
	defer func() {
		rt.mu.Lock()
		rt.leading = false
		rt.mu.Unlock()
		rt.m.leader.Set(0)
		rt.stopBridges()
		rt.log.Info("stopped leading", "epoch", epoch)
	}()
	for _, r := range records {
		if bridgeWanted(r.Phase) {
			rt.startBridge(r)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.watchEpoch(gctx, end, epoch) })
	g.Go(func() error { return rt.consumeEvents(gctx) })
	g.Go(func() error { return rt.consumeRequests(gctx) })
	g.Go(func() error { rt.tickLoop(gctx); return nil })
	g.Go(func() error { rt.registryLoop(gctx); return nil })
	err = g.Wait()
	if errors.Is(err, errDeposed) {
		rt.log.Warn("deposed", "epoch", epoch)
		return nil
	}
	return err
}

// replay reads the state topic to its end: the latest record of every
// rollout, the highest epoch claimed, and the offset after the last record.
func (rt *Runtime) replay(ctx context.Context) (map[string]*Rollout, uint64, int64, error) {
	var end int64
	// Right after the topic was created its leader may not be known yet:
	// retry for a while before giving up the lead.
	for attempt := 0; ; attempt++ {
		conn, err := rt.cfg.Security.Dialer().DialLeader(ctx, "tcp", rt.cfg.Brokers[0], rt.topics.State, 0)
		if err == nil {
			end, err = conn.ReadLastOffset()
			_ = conn.Close()
		}
		if err == nil {
			break
		}
		if attempt == 50 || ctx.Err() != nil {
			return nil, 0, 0, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := map[string]*Rollout{}
	var highest uint64
	if end == 0 {
		return out, 0, 0, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: rt.cfg.Brokers, Topic: rt.topics.State, Partition: 0, MaxWait: 200 * time.Millisecond,
		Dialer: rt.cfg.Security.Dialer()})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return nil, 0, 0, err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rec, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("read state at offset %d of %d: %w", r.Offset(), end, err)
		}
		d, err := (events.Validator{Class: schema.ClassState}).Decode(rec)
		switch {
		case err != nil:
			rt.log.Error("unreadable state record skipped", "offset", rec.Offset, "err", err)
		case d.Message.MessageType() == schema.TypeEpochRecord:
			highest = max(highest, d.Message.(*schema.EpochRecord).Epoch)
		default:
			ro, err := fromRecord(d.Message.(*schema.RolloutRecord))
			if err != nil {
				rt.log.Error("unusable rollout record skipped", "offset", rec.Offset, "err", err)
				break
			}
			out[ro.ID] = ro
		}
		if rec.Offset+1 >= end {
			return out, highest, end, nil
		}
	}
}

// watchEpoch reads new state records and ends leading when another replica
// claimed a higher epoch (a deposed leader must stop sending at once).
func (rt *Runtime) watchEpoch(ctx context.Context, from int64, epoch uint64) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: rt.cfg.Brokers, Topic: rt.topics.State, Partition: 0, MaxWait: 250 * time.Millisecond,
		Dialer: rt.cfg.Security.Dialer()})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	for {
		rec, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		d, err := (events.Validator{Class: schema.ClassState}).Decode(rec)
		if err != nil || d.Message.MessageType() != schema.TypeEpochRecord {
			continue
		}
		if c := d.Message.(*schema.EpochRecord); c.Epoch > epoch {
			rt.log.Warn("a higher epoch was claimed", "epoch", c.Epoch, "by", c.Leader)
			return errDeposed
		}
	}
}

func (rt *Runtime) consumeEvents(ctx context.Context) error {
	cfg := events.DefaultConsumerConfig(rt.cfg.Brokers, rt.topics.Events, rt.topics.DLQ)
	cfg.Security = rt.cfg.Security
	c, err := events.NewGroupConsumer(cfg, rt.cfg.TopicPrefix+"coordinator-events", events.Validator{Class: schema.ClassEvent},
		rt.handleEvent, rt.prod, rt.log, rt.evm)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

func (rt *Runtime) consumeRequests(ctx context.Context) error {
	keys := events.NewKeyring()
	if rt.cfg.OperatorKeysDir != "" {
		var err error
		if keys, err = events.LoadKeyring(rt.cfg.OperatorKeysDir); err != nil {
			return fmt.Errorf("operator keys: %w", err)
		}
	}
	vcfg := events.DefaultRequestVerifierConfig()
	vcfg.AllowUnsigned = rt.cfg.AcceptUnsigned
	v, err := events.NewRequestVerifier(vcfg, keys)
	if err != nil {
		return err
	}
	cfg := events.DefaultConsumerConfig(rt.cfg.Brokers, rt.topics.Requests, rt.topics.DLQ)
	cfg.Security = rt.cfg.Security
	c, err := events.NewGroupConsumer(cfg, rt.cfg.TopicPrefix+"coordinator-requests", v, rt.handleRequest, rt.prod, rt.log, rt.evm)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// handleEvent folds an ack, a health report or a hello into the rollouts
// that involve its node.
func (rt *Runtime) handleEvent(ctx context.Context, d events.Delivery) error {
	now := time.Now().UTC()
	var node string
	var in Input
	switch m := d.Message.(type) {
	case *schema.Ack:
		node, in = m.NodeID, AckIn{Now: now, Ack: *m}
		rt.m.acks.WithLabelValues(m.Outcome).Inc()
	case *schema.Health:
		node, in = m.NodeID, HealthIn{Now: now, Health: *m}
	case *schema.Hello:
		node, in = m.NodeID, HelloIn{Now: now, Hello: *m}
	default:
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, r := range rt.active() {
		if r.Node(node) != nil {
			if err := rt.fold(ctx, r, in); err != nil {
				return err
			}
		}
	}
	return nil
}

// handleRequest creates a rollout or steers one.
func (rt *Runtime) handleRequest(ctx context.Context, d events.Delivery) error {
	now := time.Now().UTC()
	req := d.Message.(schema.Request)
	h := req.Requested()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c, ok := req.(*schema.CreateRollout); ok {
		if _, exists := rt.rollouts[h.RolloutID]; exists {
			rt.log.Info("create of an existing rollout ignored", "rollout", h.RolloutID, "request", h.RequestID)
			return nil
		}
		for _, other := range rt.active() {
			for _, n := range c.Plan.Nodes {
				if other.Node(n.NodeID) != nil {
					return fmt.Errorf("rollout %s: node %s is already in active rollout %s", h.RolloutID, n.NodeID, other.ID)
				}
			}
		}
		r, out, err := NewRollout(h.RolloutID, c.Plan, rt.epoch, now)
		if err != nil {
			return fmt.Errorf("rollout %s: %w", h.RolloutID, err) // dead-lettered with the reason
		}
		rt.rollouts[r.ID] = &r
		rt.log.Info("rollout created", "rollout", r.ID, "by", h.RequestedBy, "nodes", len(r.Nodes))
		return rt.after(ctx, &r, out)
	}
	r, ok := rt.rollouts[h.RolloutID]
	if !ok {
		return fmt.Errorf("request %s: no rollout %s", h.RequestID, h.RolloutID)
	}
	in := RequestIn{Now: now, By: h.RequestedBy}
	switch m := req.(type) {
	case *schema.Pause:
		in.Kind = RequestPause
	case *schema.Resume:
		in.Kind = RequestResume
	case *schema.Approve:
		in.Kind, in.Wave = RequestApprove, m.Wave
	case *schema.Abort:
		in.Kind = RequestAbort
	case *schema.Finalize:
		in.Kind = RequestFinalize
	default:
		return fmt.Errorf("request %s: unknown type %T", h.RequestID, req)
	}
	return rt.fold(ctx, r, in)
}

func (rt *Runtime) tickLoop(ctx context.Context) {
	t := time.NewTicker(rt.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rt.mu.Lock()
			for _, r := range rt.active() {
				if err := rt.fold(ctx, r, Tick{Now: now.UTC()}); err != nil && ctx.Err() == nil {
					rt.log.Warn("tick", "rollout", r.ID, "err", err)
				}
			}
			for id := range rt.dirty {
				if r, ok := rt.rollouts[id]; ok {
					if err := rt.persist(ctx, r); err == nil {
						delete(rt.dirty, id)
					}
				}
			}
			rt.mu.Unlock()
		}
	}
}

// active lists the rollouts not yet ended, in id order. Call with rt.mu held.
func (rt *Runtime) active() []*Rollout {
	var out []*Rollout
	for _, id := range slices.Sorted(mapsKeys(rt.rollouts)) {
		if r := rt.rollouts[id]; !r.Phase.Ended() {
			out = append(out, r)
		}
	}
	return out
}
