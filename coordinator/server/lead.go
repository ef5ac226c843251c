package server

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// errDeposed ends leading when another replica claimed a higher epoch.
var errDeposed = errors.New("coordinator: deposed by a higher epoch")

// lead replays the state topic, claims the next epoch and runs the
// rollouts until ctx ends or a higher claim appears.
func (s *Server) lead(ctx context.Context, prod *events.Producer) error {
	log := s.stateLog()
	heads := map[string]schema.RolloutRecord{}
	nodes := map[string][]schema.NodeRecord{}
	seen := map[string]schema.SeenRequest{}
	var highest uint64
	end, err := log.Replay(ctx, func(offset int64, d events.Delivery, err error) {
		if err != nil {
			s.log.Error("unreadable state record skipped", "offset", offset, "err", err)
			return
		}
		switch m := d.Message.(type) {
		case *schema.EpochRecord:
			highest = max(highest, m.Epoch)
		case *schema.RolloutRecord:
			heads[m.ID] = *m
		case *schema.NodeRecord:
			nodes[m.RolloutID] = append(nodes[m.RolloutID], *m) // the latest of a node wins below
		case *schema.SeenRequest:
			seen[m.RequestID] = *m
		}
	})
	if err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	records := map[string]*coordinator.Rollout{}
	for id, head := range heads {
		r, err := coordinator.FromRecords(head, latest(nodes[id]))
		if err != nil {
			s.log.Error("unusable rollout skipped", "rollout", id, "err", err)
			continue
		}
		records[id] = &r
	}
	epoch := highest + 1
	o := newOwner(s, prod, epoch)
	o.seen.restore(seen, s.now())
	claim := &schema.EpochRecord{Epoch: epoch, Leader: s.cfg.ID, AcquiredAt: s.now()}
	if err := o.publish(ctx, claim); err != nil {
		return fmt.Errorf("claim epoch %d: %w", epoch, err)
	}
	for id, r := range records {
		r.Epoch = epoch // every command from now on carries the new epoch
		r.MarkDirty(coordinator.Dirty{Head: true})
		o.rollouts[id] = r
		o.changed[id] = true
		o.fx.touched[id] = r
	}
	o.publishView()
	s.status.Store(&Health{Replica: s.cfg.ID, Leader: true, Epoch: epoch})
	s.m.leader.Set(1)
	s.log.Info("leading", "epoch", epoch, "rollouts", len(records))
	defer func() {
		s.status.Store(&Health{Replica: s.cfg.ID, Leader: false, Epoch: epoch})
		s.m.leader.Set(0)
		s.bridges.stopAll()
		s.log.Info("stopped leading", "epoch", epoch)
	}()
	for _, r := range records {
		if bridgeWanted(r.Phase) {
			s.bridges.start(r)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.watchEpoch(gctx, end, epoch) })
	g.Go(func() error { return o.run(gctx) })
	g.Go(func() error { return s.consumeEvents(gctx, o, prod) })
	g.Go(func() error { return s.consumeRequests(gctx, o, prod) })
	g.Go(func() error { s.registryLoop(gctx, o); return nil })
	err = g.Wait()
	if errors.Is(err, errDeposed) {
		s.log.Warn("deposed", "epoch", epoch)
		return nil
	}
	return err
}

func (s *Server) stateLog() events.StateLog {
	return events.StateLog{Brokers: s.cfg.Brokers, Topic: s.topics.State, Security: s.cfg.Security,
		Decoder: events.Validator{Class: schema.ClassState}}
}

// watchEpoch reads new state records and ends leading when another replica
// claimed a higher epoch (a deposed leader must stop sending at once).
func (s *Server) watchEpoch(ctx context.Context, from int64, epoch uint64) error {
	log := s.stateLog()
	log.Types = []string{schema.TypeEpochRecord} // not the node records this leader writes by the thousand
	return log.Follow(ctx, from, func(_ int64, d events.Delivery, err error) error {
		if err != nil || d.Message.MessageType() != schema.TypeEpochRecord {
			return nil
		}
		if c := d.Message.(*schema.EpochRecord); c.Epoch > epoch {
			s.log.Warn("a higher epoch was claimed", "epoch", c.Epoch, "by", c.Leader)
			return errDeposed
		}
		return nil
	})
}

func (s *Server) consumeEvents(ctx context.Context, o *owner, prod *events.Producer) error {
	cfg := events.DefaultConsumerConfig(s.cfg.Brokers, s.topics.Events, s.topics.DLQ)
	cfg.Security = s.cfg.Security
	c, err := events.NewGroupBatchConsumer(cfg, s.cfg.TopicPrefix+"coordinator-events", events.Validator{Class: schema.ClassEvent},
		o.handleEvents, prod, s.log, s.evm)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

func (s *Server) consumeRequests(ctx context.Context, o *owner, prod *events.Producer) error {
	v, err := events.NewRequestVerifier(s.requests, s.operators)
	if err != nil {
		return err
	}
	cfg := events.DefaultConsumerConfig(s.cfg.Brokers, s.topics.Requests, s.topics.DLQ)
	cfg.Security = s.cfg.Security
	c, err := events.NewGroupConsumer(cfg, s.cfg.TopicPrefix+"coordinator-requests", v, o.handleRequest, prod, s.log, s.evm)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// latest keeps the last record of each node: the log may hold several of a
// node that compaction has not merged yet.
func latest(recs []schema.NodeRecord) []schema.NodeRecord {
	at := map[string]int{}
	var out []schema.NodeRecord
	for _, n := range recs {
		if k, ok := at[n.ID]; ok {
			out[k] = n
			continue
		}
		at[n.ID] = len(out)
		out = append(out, n)
	}
	return out
}
