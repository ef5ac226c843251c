package server

import (
	"context"
	"errors"
	"fmt"
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
func (s *Server) lead(ctx context.Context, prod *events.Producer) error {
	rep, err := s.replay(ctx)
	if err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	records := rep.rollouts
	epoch := rep.highest + 1
	o := newOwner(s, prod, epoch)
	o.quarantine(rep.quarantine)
	o.seen.restore(rep.seen, s.now())
	claim := &schema.EpochRecord{Epoch: epoch, Leader: s.cfg.ID, AcquiredAt: s.now()}
	if err := o.publish(ctx, claim); err != nil {
		return fmt.Errorf("claim epoch %d: %w", epoch, err)
	}
	for id, r := range records {
		r.Adopt(epoch, s.now())
		o.rollouts[id] = r
		o.changed[id] = true
		o.fx.touched[id] = r
	}
	o.publishView()
	s.setStatus(func(h *Health) { h.Leader, h.Epoch = true, epoch })
	s.m.leader.Set(1)
	s.log.Info("leading", "epoch", epoch, "rollouts", len(records), "quarantined", len(rep.quarantine))
	defer func() {
		s.setStatus(func(h *Health) { h.Leader = false })
		s.m.leader.Set(0)
		s.bridges.stopAll()
		s.log.Info("stopped leading", "epoch", epoch)
	}()
	for _, r := range records {
		if bridgeWanted(r) {
			s.bridges.start(r)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.watchEpoch(gctx, rep.end, epoch) })
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
	return events.StateLog{Brokers: s.cfg.Brokers, Topic: s.topics.State, Security: s.cfg.Security, Decoder: s.state}
}

// watchEpoch reads new epoch claims and ends leading when another replica
// claimed the next epoch (a deposed leader must stop sending at once). A
// claim no coordinator key signed, or one that jumps past the next epoch
// (epochChain), is ignored: it deposes no one.
func (s *Server) watchEpoch(ctx context.Context, from int64, epoch uint64) error {
	log := s.stateLog()
	log.Types = []string{schema.TypeEpochRecord} // not the node records this leader writes by the thousand
	chain := epochChain{highest: epoch}
	var refused refusals
	return log.Follow(ctx, from, func(offset int64, d events.Delivery, err error) error {
		if err != nil {
			s.refuseRecord(&refused, offset, err)
			return nil
		}
		c, ok := d.Message.(*schema.EpochRecord)
		switch {
		case !ok:
		case !chain.offer(c.Epoch):
			s.refuseClaim(&refused, offset, c, chain.highest)
		case c.Epoch > epoch:
			s.log.Warn("a higher epoch was claimed", "epoch", c.Epoch, "by", c.Leader)
			return errDeposed
		}
		return nil
	})
}

// consumeEvents folds the agents' events, each verified against the node
// keyring as it is then (Serve follows NodeKeysDir; on every core: the batch consumer decodes in parallel); a
// forged or mis-bound one is dead-lettered with its reason and never
// reaches Step.
func (s *Server) consumeEvents(ctx context.Context, o *owner, prod *events.Producer) error {
	if s.cfg.AcceptUnsignedEvents {
		s.log.Warn("unsigned agent events are accepted: anyone who can write the events topic can move rollouts", "node_keys", s.nodes.Len())
	}
	v, err := events.NewEventVerifier(events.EventVerifierConfig{AllowUnsigned: s.cfg.AcceptUnsignedEvents}, s.nodes)
	if err != nil {
		return err
	}
	cfg := events.DefaultConsumerConfig(s.cfg.Brokers, s.topics.Events, s.topics.DLQ)
	cfg.Security = s.cfg.Security
	// Folding an ack or a health report again changes nothing, so a crash
	// may hand the last second's events again: commit in the background
	// (BenchmarkIngest on the real broker: 40,000 -> 87,000 events/s).
	cfg.CommitEvery = time.Second
	c, err := events.NewGroupBatchConsumer(cfg, s.cfg.TopicPrefix+"coordinator-events", v, o.handleEvents, prod, s.log, s.evm)
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

// setStatus changes the replica's status and wakes the console's streams.
func (s *Server) setStatus(change func(*Health)) {
	s.statusMu.Lock()
	h := *s.status.Load()
	change(&h)
	s.status.Store(&h)
	s.statusMu.Unlock()
	s.hub.poke()
}

// followEpochs reads every epoch claim a coordinator key signed, from the
// start of the state topic, for as long as the replica runs: the latest
// names the leader, which /healthz and the console of every replica —
// standbys too — show. It decides nothing: leading follows the elector and
// watchEpoch.
func (s *Server) followEpochs(ctx context.Context) error {
	log := s.stateLog()
	log.Types = []string{schema.TypeEpochRecord}
	err := log.Follow(ctx, kafka.FirstOffset, func(_ int64, d events.Delivery, err error) error {
		if err != nil {
			return nil // refused records are counted by replay and watchEpoch
		}
		if c, ok := d.Message.(*schema.EpochRecord); ok {
			s.setStatus(func(h *Health) {
				if c.Epoch >= h.LeaderEpoch {
					h.LeaderReplica, h.LeaderEpoch, h.LeaderSince = c.Leader, c.Epoch, c.AcquiredAt
				}
			})
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
