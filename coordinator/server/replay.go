package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// maxQuarantineListed bounds the quarantined rollouts GET /v1/rollouts
// lists (in id order); the gauge regshift_coordinator_rollouts_quarantined
// counts them all.
const maxQuarantineListed = 100

// replayed is what a new leader read of the state topic.
type replayed struct {
	end      int64  // the offset the epoch watch continues from
	highest  uint64 // the highest epoch claim trusted
	rollouts map[string]*coordinator.Rollout
	// quarantine holds the rollouts whose records were refused: they are
	// not run and their nodes are not commanded.
	quarantine map[string]quarantined
	seen       map[string]schema.SeenRequest // request ids handled, by id
}

// quarantined is a rollout whose records do not make a rollout, as the
// API lists it (Summary.Quarantined says why), and the nodes its records
// name: no new rollout may take them while it has not ended.
type quarantined struct {
	summary Summary
	nodes   []string
}

// replay reads the state topic to its end. Only what a coordinator key
// signed is read (the rest is ignored, logged and counted); an epoch claim
// is trusted as epochChain says; each rollout is rebuilt with
// coordinator.FromRecords, and one it refuses is quarantined with the
// reason, as are node records without a trusted head.
func (s *Server) replay(ctx context.Context) (replayed, error) {
	heads := map[string]schema.RolloutRecord{}
	nodes := map[string][]schema.NodeRecord{}
	seen := map[string]schema.SeenRequest{}
	var chain epochChain
	var refused refusals
	end, err := s.stateLog().Replay(ctx, func(offset int64, d events.Delivery, err error) {
		if err != nil {
			s.refuseRecord(&refused, offset, err)
			return
		}
		switch m := d.Message.(type) {
		case *schema.EpochRecord:
			if !chain.offer(m.Epoch) {
				s.refuseClaim(&refused, offset, m, chain.highest)
			}
		case *schema.RolloutRecord:
			heads[m.ID] = *m
		case *schema.NodeRecord:
			nodes[m.RolloutID] = append(nodes[m.RolloutID], *m) // the latest of a node wins below
		case *schema.SeenRequest:
			seen[m.RequestID] = *m
		}
	})
	if err != nil {
		return replayed{}, err
	}
	if refused.n > 0 {
		s.log.Warn("state records ignored on replay", "count", refused.n)
	}
	out := replayed{end: end, highest: chain.highest, rollouts: map[string]*coordinator.Rollout{}, quarantine: map[string]quarantined{}, seen: seen}
	for id, head := range heads {
		recs := latest(nodes[id])
		r, err := coordinator.FromRecords(head, recs)
		if err != nil {
			out.quarantine[id] = s.refuseRollout(head, recs, err)
			continue
		}
		out.rollouts[id] = &r
	}
	for id, recs := range nodes {
		if _, ok := heads[id]; !ok {
			out.quarantine[id] = s.refuseRollout(schema.RolloutRecord{ID: id}, latest(recs), errNoHead)
		}
	}
	s.m.quarantined.Set(float64(len(out.quarantine)))
	return out, nil
}

var errNoHead = errors.New("node records without a trusted rollout head")

// refuseRollout logs a refused rollout and returns its quarantine entry.
func (s *Server) refuseRollout(head schema.RolloutRecord, nodes []schema.NodeRecord, err error) quarantined {
	s.log.Error("rollout quarantined: not run, its nodes not commanded", "rollout", head.ID, "err", err)
	q := quarantined{summary: summarize(&coordinator.Rollout{RolloutRecord: head}), nodes: make([]string, len(nodes))}
	q.summary.Quarantined = schema.Truncate(err.Error(), schema.MaxDetail)
	for i, n := range nodes {
		q.nodes[i] = n.ID
	}
	return q
}

// listQuarantine is what the API lists of the quarantine: the first
// maxQuarantineListed in id order.
func listQuarantine(q map[string]quarantined) []Summary {
	ids := slices.Sorted(maps.Keys(q))
	out := make([]Summary, 0, min(len(ids), maxQuarantineListed))
	for _, id := range ids[:min(len(ids), maxQuarantineListed)] {
		out = append(out, q[id].summary)
	}
	return out
}

// epochChain follows the epoch claims of the state topic in order. The
// first claim offered is the base — after compaction the topic starts with
// the last claim that survived — and a later claim is trusted only when it
// is at most one above the highest so far: every leader claims the highest
// it read plus one, so a bigger jump is no leader's, and one of 2^53-1
// would leave no epoch to claim after it.
type epochChain struct{ highest uint64 }

// offer reports whether the claim is trusted, and raises the highest.
func (c *epochChain) offer(epoch uint64) bool {
	if c.highest != 0 && epoch > c.highest+1 {
		return false
	}
	c.highest = max(c.highest, epoch)
	return true
}

// refusals counts the state records one reading ignored, to bound its log
// lines: the first maxRefusalLines, then every 1,000th. The metrics count
// each.
type refusals struct{ n int }

const maxRefusalLines = 10

func (r *refusals) logNext() bool {
	r.n++
	return r.n <= maxRefusalLines || r.n%1000 == 0
}

// refuseRecord ignores a record that failed to decode or verify.
func (s *Server) refuseRecord(r *refusals, offset int64, err error) {
	reason, ok := events.ReasonOf(err)
	if !ok {
		reason = "unreadable"
	}
	s.m.stateRefused.WithLabelValues(string(reason)).Inc()
	if r.logNext() {
		s.log.Warn("state record ignored", "offset", offset, "reason", reason, "err", err, "ignored", r.n)
	}
}

// refuseClaim ignores a signed epoch claim that jumps.
func (s *Server) refuseClaim(r *refusals, offset int64, c *schema.EpochRecord, highest uint64) {
	s.m.claimsRefused.Inc()
	if r.logNext() {
		s.log.Warn("epoch claim ignored", "offset", offset, "epoch", c.Epoch, "by", c.Leader, "ignored", r.n,
			"why", fmt.Sprintf("more than one above the highest claim, %d", highest))
	}
}
