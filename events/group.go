package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// GroupConsumer is the coordinator's loop: a consumer-group reader that
// fetches a batch of records (ConsumerConfig.MaxBatch, BatchWait),
// processes it, then commits it with one commit. A record is committed only
// when done with, so a crash redelivers it: handlers recognise duplicates
// by id. A group with no committed offset starts at the earliest record.
//
// A batch's records are all decoded before its handler sees any of them:
// a Decoder whose verdict depends on what the handler did (the
// CommandVerifier's replay state) wants MaxBatch 1.
type GroupConsumer struct {
	p     pipeline
	group string
}

// NewGroupConsumer returns a loop reading cfg.Topic as member of group that
// hands h the records of each batch one at a time.
func NewGroupConsumer(cfg ConsumerConfig, group string, dec Decoder, h Handler, dlq Publisher, log *slog.Logger, m *Metrics) (*GroupConsumer, error) {
	if h == nil {
		return nil, errors.New("events: NewGroupConsumer: no handler")
	}
	return NewGroupBatchConsumer(cfg, group, dec, oneByOne(h), dlq, log, m)
}

// NewGroupBatchConsumer returns a loop reading cfg.Topic as member of group
// that hands h the valid records of each batch in one call.
func NewGroupBatchConsumer(cfg ConsumerConfig, group string, dec Decoder, h BatchHandler, dlq Publisher, log *slog.Logger, m *Metrics) (*GroupConsumer, error) {
	if group == "" {
		return nil, errors.New("events: NewGroupConsumer: group is empty")
	}
	if log == nil {
		return nil, errors.New("events: NewGroupConsumer: no logger")
	}
	log = log.With("component", "events.group-consumer", "topic", cfg.Topic, "group", group)
	p, err := newPipeline(cfg, group, dec, h, dlq, log, m)
	if err != nil {
		return nil, err
	}
	return &GroupConsumer{p: p, group: group}, nil
}

// Run consumes until ctx ends, rebuilding the reader after errors; it
// returns nil when ctx ends.
func (g *GroupConsumer) Run(ctx context.Context) error {
	b := g.p.cfg.backoff(ctx)
	for ctx.Err() == nil {
		rc := g.p.cfg.readerConfig(g.p.log)
		rc.GroupID = g.group
		rc.CommitInterval = g.p.cfg.CommitEvery // 0: synchronously, in CommitMessages
		rc.StartOffset = kafka.FirstOffset
		rc.SessionTimeout = g.p.cfg.SessionTimeout
		rc.HeartbeatInterval = g.p.cfg.HeartbeatInterval
		rc.RebalanceTimeout = g.p.cfg.SessionTimeout
		rc.JoinGroupBackoff = g.p.cfg.RetryInitial
		rc.QueueCapacity = max(g.p.cfg.MaxBatch, 100) // the next batch is fetched while this one is handled
		r := kafka.NewReader(rc)
		err := g.consume(ctx, r, b)
		_ = r.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !g.p.rebuilt(ctx, b, err) {
			return nil
		}
	}
	return nil
}

func (g *GroupConsumer) consume(ctx context.Context, r *kafka.Reader, b backoff.BackOff) error {
	batch := make([]kafka.Message, 0, g.p.cfg.MaxBatch)
	for {
		var err error
		if batch, err = g.fetch(ctx, r, batch[:0]); err != nil {
			g.p.m.errors.WithLabelValues(g.p.cfg.Topic, "fetch").Inc()
			return err // what was fetched is not committed: it comes again
		}
		if err := g.p.process(ctx, batch); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			g.p.m.errors.WithLabelValues(g.p.cfg.Topic, "commit").Inc()
			last := batch[len(batch)-1]
			return fmt.Errorf("commit %d records, the last %d@%d: %w", len(batch), last.Partition, last.Offset, err)
		}
		b.Reset()
	}
}

// fetch appends a batch to into: it waits for a first record, then takes
// what else comes within BatchWait, up to MaxBatch records or MaxBytes.
func (g *GroupConsumer) fetch(ctx context.Context, r *kafka.Reader, into []kafka.Message) ([]kafka.Message, error) {
	rec, err := r.FetchMessage(ctx)
	if err != nil {
		return into, err
	}
	into = append(into, rec)
	size := len(rec.Value)
	full := func() bool { return len(into) >= g.p.cfg.MaxBatch || size >= g.p.cfg.MaxBytes }
	if full() {
		return into, nil
	}
	wait, cancel := context.WithTimeout(ctx, g.p.cfg.BatchWait)
	defer cancel()
	for !full() {
		rec, err := r.FetchMessage(wait)
		switch {
		case err == nil:
			into = append(into, rec)
			size += len(rec.Value)
		case ctx.Err() == nil && wait.Err() != nil:
			return into, nil // the wait is over
		default:
			return into, err
		}
	}
	return into, nil
}
