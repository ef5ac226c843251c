package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// Handler handles one verified delivery. Return nil when done. An error for
// which Retriable is true is retried with backoff and the record is not
// passed over; ErrSkip passes over it; a *RejectError sends the record to
// the dead-letter topic with its reason (ReasonDuplicate only counts it);
// any other error sends it there with ReasonHandlerFailed.
type Handler func(ctx context.Context, d Delivery) error

// BatchHandler handles the verified deliveries of a batch, in the order they
// were read (each partition's in log order). It returns a result per
// delivery, meaning what a Handler's error means, or nil when every one was
// handled. From the first Retriable result on, the rest of the batch is
// handed again after a backoff whatever the later results said — a
// partition's order is kept, and a delivery may be handed twice (handlers
// recognise duplicates by id). A result slice of another length is a bug:
// the whole batch is then dead-lettered as handler-failed. ds is the
// handler's only for the call.
type BatchHandler func(ctx context.Context, ds []Delivery) []error

// oneByOne hands a batch to h one delivery at a time and stops at the first
// retriable error: the pipeline hands that delivery and the rest again.
func oneByOne(h Handler) BatchHandler {
	return func(ctx context.Context, ds []Delivery) []error {
		var errs []error
		for i, d := range ds {
			err := h(ctx, d)
			if err == nil {
				continue
			}
			if errs == nil {
				errs = make([]error, len(ds))
			}
			errs[i] = err
			if Retriable(err) || ctx.Err() != nil {
				return errs
			}
		}
		return errs
	}
}

// ConsumerConfig configures the consumer loops.
type ConsumerConfig struct {
	Brokers []string
	// Topic is read; DLQTopic receives what is refused.
	Topic, DLQTopic string
	// MaxWait is the longest a fetch waits for records. Default 250ms.
	MaxWait time.Duration
	// MaxBatch is the most records a group consumer hands its handler at
	// once and commits with one commit. Default 500; 1 handles and commits
	// record by record. A partition consumer always takes one at a time.
	MaxBatch int
	// BatchWait is how long a group consumer, once it has a batch's first
	// record, waits for more before it handles what it has. Default 5ms.
	BatchWait time.Duration
	// CommitEvery, when above 0, lets a group consumer commit a batch's
	// offsets in the background at most this often instead of waiting for
	// each commit: for handlers that may see a record again after a crash
	// or rebalance and do nothing new with it (the coordinator folding
	// acks and health). Default 0: every batch is committed before the
	// next is handled.
	CommitEvery time.Duration
	// MaxBytes is the most a fetch asks the broker for (kafka-go's Reader
	// MaxBytes) and the most value bytes a group consumer gathers in one
	// batch (a batch holds at least one record). Default
	// DefaultRequestMaxMessageBytes + DeadLetterHeadroom, the largest
	// max.message.bytes Bootstrap sets, so a record of any topic is fetched
	// whole. It bounds no allocation by itself.
	MaxBytes int
	// DecodeWorkers is how many goroutines decode a batch's records at once,
	// each a contiguous share of at least 32 (JSON Schema validation is most
	// of a record's cost). 0 means runtime.GOMAXPROCS(0); 1 decodes in the
	// loop's own goroutine. Default 0.
	DecodeWorkers int
	// ReaderAttempts is how often kafka-go retries a failing fetch before
	// the loop sees the error and rebuilds the reader. Default 3.
	ReaderAttempts int
	// RetryInitial and RetryMax shape the backoff between reader rebuilds
	// and between handler and dead-letter retries. Defaults 100ms, 5s.
	RetryInitial, RetryMax time.Duration
	// SessionTimeout and HeartbeatInterval of the group member (group
	// consumer only). Defaults 10s, 1s.
	SessionTimeout, HeartbeatInterval time.Duration
	// Security: TLS and SASL to the brokers; plaintext when zero.
	Security Security
}

// DefaultConsumerConfig returns the defaults for reading topic.
func DefaultConsumerConfig(brokers []string, topic, dlqTopic string) ConsumerConfig {
	return ConsumerConfig{Brokers: brokers, Topic: topic, DLQTopic: dlqTopic, MaxWait: 250 * time.Millisecond,
		MaxBatch: 500, BatchWait: 5 * time.Millisecond, MaxBytes: maxFetchBytes, ReaderAttempts: 3, RetryInitial: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second}
}

func (c ConsumerConfig) validate() error {
	var errs []error
	if len(c.Brokers) == 0 || c.Topic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("need Brokers, Topic and DLQTopic"))
	}
	if c.ReaderAttempts < 1 || c.MaxBatch < 1 || c.MaxBytes < 1 {
		errs = append(errs, errors.New("need ReaderAttempts, MaxBatch and MaxBytes of at least 1"))
	}
	if c.DecodeWorkers < 0 {
		errs = append(errs, fmt.Errorf("negative DecodeWorkers %d", c.DecodeWorkers))
	}
	if c.CommitEvery < 0 {
		errs = append(errs, fmt.Errorf("CommitEvery %s is negative", c.CommitEvery))
	}
	for name, d := range map[string]time.Duration{"MaxWait": c.MaxWait, "BatchWait": c.BatchWait, "RetryInitial": c.RetryInitial, "RetryMax": c.RetryMax,
		"SessionTimeout": c.SessionTimeout, "HeartbeatInterval": c.HeartbeatInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("events: ConsumerConfig: %w", err)
	}
	return nil
}

func (c ConsumerConfig) backoff(ctx context.Context) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = c.RetryInitial, c.RetryMax, 0
	return backoff.WithContext(b, ctx)
}

func (c ConsumerConfig) readerConfig(log *slog.Logger) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:         c.Brokers,
		Topic:           c.Topic,
		MinBytes:        1,
		MaxBytes:        c.MaxBytes,
		MaxWait:         c.MaxWait,
		MaxAttempts:     c.ReaderAttempts,
		ReadBackoffMin:  c.RetryInitial,
		ReadBackoffMax:  c.RetryMax,
		ReadLagInterval: -1,
		Dialer:          c.Security.dialer(),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka-go: " + fmt.Sprintf(msg, args...))
		}),
	}
}

// pipeline is what both loops do with the records they read: decode,
// handle, dead-letter.
type pipeline struct {
	cfg      ConsumerConfig
	consumer string
	dec      Decoder
	handle   BatchHandler
	dlq      Publisher
	log      *slog.Logger
	m        *Metrics
}

func newPipeline(cfg ConsumerConfig, consumer string, dec Decoder, h BatchHandler, dlq Publisher, log *slog.Logger, m *Metrics) (pipeline, error) {
	if err := cfg.validate(); err != nil {
		return pipeline{}, err
	}
	if dec == nil || h == nil || dlq == nil || log == nil || m == nil {
		return pipeline{}, errors.New("events: a consumer needs a decoder, a handler, a dead-letter publisher, a logger and metrics")
	}
	return pipeline{cfg: cfg, consumer: consumer, dec: dec, handle: h, dlq: dlq, log: log, m: m}, nil
}

// retry runs op until it succeeds or ctx ends, counting each failure.
func (p pipeline) retry(ctx context.Context, op string, f func() error) error {
	return backoff.RetryNotify(f, p.cfg.backoff(ctx), func(err error, next time.Duration) {
		p.m.errors.WithLabelValues(p.cfg.Topic, op).Inc()
		p.log.Warn("retrying", "op", op, "in", next, "err", err)
	})
}

// process decides the fate of a batch of records, read in order: it decodes
// each, hands the valid ones to the handler in one call — again from the
// first retriable failure on, with backoff — and dead-letters what was
// refused in one publish. It returns nil once every record is done with —
// handled, skipped or dead-lettered — so the caller moves past them, and an
// error only when ctx ended first.
func (p pipeline) process(ctx context.Context, recs []kafka.Message) error {
	start := time.Now()
	defer func() { p.m.handleSeconds.WithLabelValues(p.cfg.Topic).Observe(time.Since(start).Seconds()) }()
	p.m.batchRecords.WithLabelValues(p.cfg.Topic).Observe(float64(len(recs)))
	var o outcomes
	decoded, errs := p.decode(recs)
	ds := decoded[:0]
	for i, d := range decoded {
		if errs[i] != nil {
			p.settle(&o, recs[i], errs[i])
			continue
		}
		ds = append(ds, d)
	}
	if len(ds) > 0 {
		pending := ds
		err := p.retry(ctx, "handle", func() error {
			errs := p.handle(ctx, pending)
			if ctx.Err() != nil {
				return backoff.Permanent(ctx.Err())
			}
			if errs != nil && len(errs) != len(pending) {
				err := fmt.Errorf("batch handler gave %d results for %d deliveries", len(errs), len(pending))
				for _, d := range pending {
					p.settle(&o, d.Record, err)
				}
				return nil
			}
			for i, d := range pending {
				var err error
				if errs != nil {
					err = errs[i]
				}
				if Retriable(err) {
					pending = pending[i:]
					return err
				}
				p.settle(&o, d.Record, err)
			}
			return nil
		})
		if err != nil { // the handler is retried until ctx ends
			return err
		}
	}
	if len(o.dead) > 0 {
		letters := make([]kafka.Message, len(o.dead))
		for i, dl := range o.dead {
			letters[i] = dl.msg
		}
		if err := p.retry(ctx, "dead-letter", func() error {
			err := p.dlq.Publish(ctx, letters...)
			var tl *RecordTooLargeError
			if errors.As(err, &tl) && tl.Index >= 0 && tl.Index < len(letters) {
				letters[tl.Index] = withoutRecord(letters[tl.Index]) // and try again: never stall on it
			}
			return err
		}); err != nil {
			return fmt.Errorf("dead-letter %d records: %w", len(letters), err)
		}
	}
	o.count(p.m, p.cfg.Topic)
	return nil
}

// minDecodeShare is the fewest records worth a decoding goroutine of their own.
const minDecodeShare = 32

// decode decodes each record, in DecodeWorkers goroutines when the batch is
// large enough; the results are in the records' order.
func (p pipeline) decode(recs []kafka.Message) ([]Delivery, []error) {
	ds, errs := make([]Delivery, len(recs)), make([]error, len(recs))
	workers := p.cfg.DecodeWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(recs)/minDecodeShare))
	share := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(recs); lo += share {
		hi := min(lo+share, len(recs))
		decodeShare := func() {
			for i := lo; i < hi; i++ {
				ds[i], errs[i] = p.dec.Decode(recs[i])
			}
		}
		if hi == len(recs) {
			decodeShare() // the last share in this goroutine
			break
		}
		wg.Go(decodeShare)
	}
	wg.Wait()
	return ds, errs
}

// outcomes is what became of a batch's records.
type outcomes struct {
	handled, skipped int
	passed           map[Reason]int // rejected but not dead-lettered (duplicates)
	dead             []deadLetter
}

type deadLetter struct {
	reason Reason
	msg    kafka.Message
}

func (o *outcomes) count(m *Metrics, topic string) {
	if o.handled > 0 {
		m.consumed.WithLabelValues(topic, "handled").Add(float64(o.handled))
	}
	if o.skipped > 0 {
		m.consumed.WithLabelValues(topic, "skipped").Add(float64(o.skipped))
	}
	for r, n := range o.passed {
		m.consumed.WithLabelValues(topic, string(r)).Add(float64(n))
	}
	for _, dl := range o.dead {
		m.deadLetters.WithLabelValues(topic, string(dl.reason)).Inc()
	}
	if len(o.dead) > 0 {
		m.consumed.WithLabelValues(topic, "dead-lettered").Add(float64(len(o.dead)))
	}
}

// settle records the fate of rec, done with err (nil: handled).
func (p pipeline) settle(o *outcomes, rec kafka.Message, err error) {
	switch {
	case err == nil:
		o.handled++
		return
	case errors.Is(err, ErrSkip):
		o.skipped++
		return
	}
	reason, ok := ReasonOf(err)
	if !ok {
		reason = ReasonHandlerFailed
	}
	if !reason.DeadLetter() {
		if o.passed == nil {
			o.passed = map[Reason]int{}
		}
		o.passed[reason]++
		p.log.Debug("record passed over", "reason", reason, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	p.log.Warn("record dead-lettered", "reason", reason, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	o.dead = append(o.dead, deadLetter{reason: reason, msg: DeadLetter(p.cfg.DLQTopic, rec, reason, err, p.consumer)})
}

// rebuilt counts and logs a reader rebuild, then waits out the backoff. It
// returns false when ctx ended.
func (p pipeline) rebuilt(ctx context.Context, b backoff.BackOff, err error) bool {
	p.m.rebuilds.WithLabelValues(p.cfg.Topic).Inc()
	wait := b.NextBackOff()
	p.log.Warn("reader failed, rebuilding", "in", wait, "err", err)
	if wait == backoff.Stop {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
