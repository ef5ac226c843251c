package benchfleet

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
)

// batcher publishes records in batches, never one synchronous publish per
// record: whatever was queued while the previous publish was in flight goes
// out in the next, up to maxBatch records at a time. Callers only queue.
type batcher struct {
	pub  events.Publisher
	in   chan kafka.Message
	done chan struct{} // closed when Run returns: add stops waiting
	log  *slog.Logger

	sent, failed atomic.Int64
}

const (
	maxBatch = 5000    // records in one publish
	queued   = 1 << 16 // records waiting for a publish before add blocks
)

func newBatcher(pub events.Publisher, log *slog.Logger) *batcher {
	return &batcher{pub: pub, in: make(chan kafka.Message, queued), done: make(chan struct{}), log: log}
}

// add queues m; it waits while the queue is full, and drops m once ctx or
// the batcher ended.
func (b *batcher) add(ctx context.Context, m kafka.Message) {
	select {
	case b.in <- m:
	case <-ctx.Done():
	case <-b.done:
	}
}

// Run publishes until ctx ends.
func (b *batcher) Run(ctx context.Context) error {
	defer close(b.done)
	batch := make([]kafka.Message, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-b.in:
			batch = append(batch, m)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case m := <-b.in:
				batch = append(batch, m)
			default:
				break more
			}
		}
		if err := b.pub.Publish(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			b.failed.Add(int64(len(batch)))
			b.log.Warn("publish failed", "records", len(batch), "err", err)
		} else {
			b.sent.Add(int64(len(batch)))
		}
		clear(batch)
		batch = batch[:0]
	}
}

// writerPublisher publishes through a plain kafka-go writer, writing
// again for up to a minute what the broker refused.
type writerPublisher struct{ w *kafka.Writer }

func (p writerPublisher) Publish(ctx context.Context, msgs ...kafka.Message) error {
	return writeAll(ctx, p.w, msgs, time.Now().Add(time.Minute))
}

var _ events.Publisher = writerPublisher{}
