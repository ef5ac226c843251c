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
// fetches a record, processes it, then commits it. A record is committed
// only when done with, so a crash redelivers it: handlers recognise
// duplicates by id. A group with no committed offset starts at the
// earliest record.
type GroupConsumer struct {
	p     pipeline
	group string
}

// NewGroupConsumer returns a loop reading cfg.Topic as member of group.
func NewGroupConsumer(cfg ConsumerConfig, group string, dec Decoder, h Handler, dlq Publisher, log *slog.Logger, m *Metrics) (*GroupConsumer, error) {
	if group == "" {
		return nil, errors.New("events: NewGroupConsumer: group is empty")
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
		rc.CommitInterval = 0 // commit synchronously, in CommitMessages
		rc.StartOffset = kafka.FirstOffset
		rc.SessionTimeout = g.p.cfg.SessionTimeout
		rc.HeartbeatInterval = g.p.cfg.HeartbeatInterval
		rc.RebalanceTimeout = g.p.cfg.SessionTimeout
		rc.JoinGroupBackoff = g.p.cfg.RetryInitial
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
	for {
		rec, err := r.FetchMessage(ctx)
		if err != nil {
			g.p.m.errors.WithLabelValues(g.p.cfg.Topic, "fetch").Inc()
			return err
		}
		if err := g.p.process(ctx, rec); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, rec); err != nil {
			g.p.m.errors.WithLabelValues(g.p.cfg.Topic, "commit").Inc()
			return fmt.Errorf("commit %d@%d: %w", rec.Partition, rec.Offset, err)
		}
		b.Reset()
	}
}
