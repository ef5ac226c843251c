package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// OffsetStore keeps a partition consumer's position: the offset of the next
// record to read. An agent keeps it on local disk with its other state.
type OffsetStore interface {
	// Load returns the next offset, or kafka.FirstOffset when none was saved.
	Load(ctx context.Context) (int64, error)
	// Save records that every record before next is done with.
	Save(ctx context.Context, next int64) error
}

// PartitionConsumer is an agent's loop: a reader of one partition whose
// position the caller keeps in an OffsetStore, saved after each record.
type PartitionConsumer struct {
	p         pipeline
	partition int
	offsets   OffsetStore
}

// NewPartitionConsumer returns a loop reading one partition of cfg.Topic.
func NewPartitionConsumer(cfg ConsumerConfig, partition int, offsets OffsetStore, dec Decoder, h Handler, dlq Publisher, log *slog.Logger, m *Metrics) (*PartitionConsumer, error) {
	if partition < 0 || offsets == nil {
		return nil, errors.New("events: NewPartitionConsumer needs a partition and an offset store")
	}
	log = log.With("component", "events.partition-consumer", "topic", cfg.Topic, "partition", partition)
	if h == nil || log == nil {
		return nil, errors.New("events: NewPartitionConsumer needs a handler and a logger")
	}
	p, err := newPipeline(cfg, fmt.Sprintf("partition-%d", partition), dec, oneByOne(h), dlq, log, m)
	if err != nil {
		return nil, err
	}
	return &PartitionConsumer{p: p, partition: partition, offsets: offsets}, nil
}

// WithName sets the consumer name written into dead-letter records (e.g. the node id).
func (c *PartitionConsumer) WithName(name string) *PartitionConsumer {
	c.p.consumer = name
	return c
}

// Run consumes until ctx ends, rebuilding the reader after errors at the
// next offset; it returns nil when ctx ends, and an error only when the
// offset store fails.
func (c *PartitionConsumer) Run(ctx context.Context) error {
	next, err := c.offsets.Load(ctx)
	if err != nil {
		return fmt.Errorf("events: load offset: %w", err)
	}
	b := c.p.cfg.backoff(ctx)
	for ctx.Err() == nil {
		rc := c.p.cfg.readerConfig(c.p.log)
		rc.Partition = c.partition
		r := kafka.NewReader(rc)
		err := r.SetOffset(next)
		if err == nil {
			next, err = c.consume(ctx, r, next, b)
		}
		_ = r.Close()
		var se *storeError
		if errors.As(err, &se) {
			return fmt.Errorf("events: save offset: %w", se.err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !c.p.rebuilt(ctx, b, err) {
			return nil
		}
	}
	return nil
}

type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }

func (c *PartitionConsumer) consume(ctx context.Context, r *kafka.Reader, next int64, b backoff.BackOff) (int64, error) {
	for {
		rec, err := r.FetchMessage(ctx)
		if err != nil {
			c.p.m.errors.WithLabelValues(c.p.cfg.Topic, "fetch").Inc()
			return next, err
		}
		if err := c.p.process(ctx, []kafka.Message{rec}); err != nil {
			return next, err
		}
		if err := c.offsets.Save(ctx, rec.Offset+1); err != nil {
			c.p.m.errors.WithLabelValues(c.p.cfg.Topic, "offset").Inc()
			return next, &storeError{err}
		}
		next = rec.Offset + 1
		b.Reset()
	}
}
