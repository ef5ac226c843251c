package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// Handler handles one verified delivery. Return nil when done. An error for
// which Retriable is true is retried with backoff and the record is not
// passed over; a *RejectError sends the record to the dead-letter topic with
// its reason (ReasonDuplicate only counts it); any other error sends it
// there with ReasonHandlerFailed.
type Handler func(ctx context.Context, d Delivery) error

// ConsumerConfig configures the consumer loops.
type ConsumerConfig struct {
	Brokers []string
	// Topic is read; DLQTopic receives what is refused.
	Topic, DLQTopic string
	// MaxWait is the longest a fetch waits for records. Default 250ms.
	MaxWait time.Duration
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
		ReaderAttempts: 3, RetryInitial: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second}
}

func (c ConsumerConfig) validate() error {
	var errs []error
	if len(c.Brokers) == 0 || c.Topic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("need Brokers, Topic and DLQTopic"))
	}
	if c.ReaderAttempts < 1 {
		errs = append(errs, errors.New("need ReaderAttempts of at least 1"))
	}
	for name, d := range map[string]time.Duration{"MaxWait": c.MaxWait, "RetryInitial": c.RetryInitial, "RetryMax": c.RetryMax,
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
		MaxBytes:        10 << 20,
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

// pipeline is what both loops do with a record: decode, handle, dead-letter.
type pipeline struct {
	cfg      ConsumerConfig
	consumer string
	dec      Decoder
	handle   Handler
	dlq      Publisher
	log      *slog.Logger
	m        *Metrics
}

func newPipeline(cfg ConsumerConfig, consumer string, dec Decoder, h Handler, dlq Publisher, log *slog.Logger, m *Metrics) (pipeline, error) {
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

// process decides a record's fate. It returns nil once the record is done
// with — handled, skipped or dead-lettered — so the caller moves past it,
// and an error only when ctx ended first.
func (p pipeline) process(ctx context.Context, rec kafka.Message) error {
	start := time.Now()
	defer func() { p.m.handleSeconds.WithLabelValues(p.cfg.Topic).Observe(time.Since(start).Seconds()) }()
	d, err := p.dec.Decode(rec)
	if err == nil {
		err = p.retry(ctx, "handle", func() error {
			err := p.handle(ctx, d)
			if err != nil && !Retriable(err) {
				return backoff.Permanent(err)
			}
			return err
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err == nil {
		p.m.consumed.WithLabelValues(p.cfg.Topic, "handled").Inc()
		return nil
	}
	if errors.Is(err, ErrSkip) {
		p.m.consumed.WithLabelValues(p.cfg.Topic, "skipped").Inc()
		return nil
	}
	reason, ok := ReasonOf(err)
	if !ok {
		reason = ReasonHandlerFailed
	}
	if !reason.DeadLetter() {
		p.m.consumed.WithLabelValues(p.cfg.Topic, string(reason)).Inc()
		p.log.Debug("record passed over", "reason", reason, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return nil
	}
	p.log.Warn("record dead-lettered", "reason", reason, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	dl := DeadLetter(p.cfg.DLQTopic, rec, reason, err, p.consumer)
	if err := p.retry(ctx, "dead-letter", func() error { return p.dlq.Publish(ctx, dl) }); err != nil {
		return fmt.Errorf("dead-letter %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	p.m.deadLetters.WithLabelValues(p.cfg.Topic, string(reason)).Inc()
	p.m.consumed.WithLabelValues(p.cfg.Topic, "dead-lettered").Inc()
	return nil
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
