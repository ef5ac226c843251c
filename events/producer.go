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

// ProducerConfig sets every safety-relevant kafka-go Writer setting
// explicitly; kafka-go's own defaults are unsafe (no acks, keys ignored,
// one-second batches).
type ProducerConfig struct {
	Brokers []string
	// BatchSize is the most records in one produce request. Default 100.
	BatchSize int
	// BatchTimeout is how long a partial batch waits for more records; every
	// synchronous publish of fewer than BatchSize records waits this long.
	// Default 1ms.
	BatchTimeout time.Duration
	// BatchBytes caps a produce request. Default 1 MiB.
	BatchBytes int64
	// ReadTimeout and WriteTimeout bound each produce request. Default 10s.
	ReadTimeout, WriteTimeout time.Duration
	// WriterAttempts is kafka-go's own attempts per batch before it reports
	// an error. Default 3.
	WriterAttempts int
	// RetryInitial, RetryMax and RetryElapsed shape the backoff with which
	// Publish retries retriable errors; RetryElapsed bounds the total (0:
	// until the context ends). Defaults 50ms, 2s, 2m.
	RetryInitial, RetryMax, RetryElapsed time.Duration
	// Security: TLS and SASL to the brokers; plaintext when zero.
	Security Security
}

// DefaultProducerConfig returns the defaults for brokers.
func DefaultProducerConfig(brokers []string) ProducerConfig {
	return ProducerConfig{Brokers: brokers, BatchSize: 100, BatchTimeout: time.Millisecond, BatchBytes: 1 << 20,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, WriterAttempts: 3,
		RetryInitial: 50 * time.Millisecond, RetryMax: 2 * time.Second, RetryElapsed: 2 * time.Minute}
}

func (c ProducerConfig) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Brokers"))
	}
	if c.BatchSize < 1 || c.BatchBytes < 1 || c.WriterAttempts < 1 {
		errs = append(errs, errors.New("need BatchSize, BatchBytes and WriterAttempts of at least 1"))
	}
	for name, d := range map[string]time.Duration{"BatchTimeout": c.BatchTimeout, "ReadTimeout": c.ReadTimeout,
		"WriteTimeout": c.WriteTimeout, "RetryInitial": c.RetryInitial, "RetryMax": c.RetryMax} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.RetryElapsed < 0 {
		errs = append(errs, errors.New("negative RetryElapsed"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("events: ProducerConfig: %w", err)
	}
	return nil
}

// NewWriter returns the kafka-go Writer the producer uses, every setting
// explicit: acks from all in-sync replicas, synchronous, KeyBalancer, no
// topic auto-creation, no compression. The topic is taken from each record.
func (c ProducerConfig) NewWriter() *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
		Balancer:               KeyBalancer{},
		RequiredAcks:           kafka.RequireAll,
		Async:                  false,
		BatchSize:              c.BatchSize,
		BatchBytes:             c.BatchBytes,
		BatchTimeout:           c.BatchTimeout,
		ReadTimeout:            c.ReadTimeout,
		WriteTimeout:           c.WriteTimeout,
		MaxAttempts:            c.WriterAttempts,
		WriteBackoffMin:        c.RetryInitial,
		WriteBackoffMax:        c.RetryMax,
		Compression:            0,
		AllowAutoTopicCreation: false,
		Transport:              c.Security.transport(),
	}
}

func (c ProducerConfig) backoff(ctx context.Context) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = c.RetryInitial, c.RetryMax, c.RetryElapsed
	return backoff.WithContext(b, ctx)
}

// Producer publishes records synchronously and retries retriable errors.
// kafka-go has no idempotent producer: a retry can duplicate a record, and
// consumers recognise duplicates by id.
type Producer struct {
	cfg     ProducerConfig
	w       *kafka.Writer
	log     *slog.Logger
	metrics *Metrics
}

// NewProducer returns a producer; Close it when done.
func NewProducer(cfg ProducerConfig, log *slog.Logger, m *Metrics) (*Producer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil || m == nil {
		return nil, errors.New("events: NewProducer needs a logger and metrics")
	}
	return &Producer{cfg: cfg, w: cfg.NewWriter(), log: log.With("component", "events.producer"), metrics: m}, nil
}

// Publish writes msgs (each with its Topic set) and returns once every
// in-sync replica has them. Records that failed with a retriable error are
// retried with backoff; it returns the first error that is not retriable,
// or the last one when the retry budget or ctx ends.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	pending := msgs
	attempt := func() error {
		err := p.w.WriteMessages(ctx, pending...)
		if err == nil {
			pending = nil
			return nil
		}
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(pending) {
			failed := pending[:0:0]
			for i, e := range we {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			pending = failed
		}
		if !Retriable(err) {
			return backoff.Permanent(err)
		}
		for _, m := range pending {
			p.metrics.publishRetries.WithLabelValues(m.Topic).Inc()
		}
		p.log.Warn("publish failed, retrying", "records", len(pending), "err", err)
		return err
	}
	err := backoff.Retry(attempt, p.cfg.backoff(ctx))
	p.metrics.publishSeconds.WithLabelValues(msgs[0].Topic).Observe(time.Since(start).Seconds())
	outcome := map[[2]string]int{}
	for _, m := range msgs {
		outcome[[2]string{m.Topic, "ok"}]++
	}
	for _, m := range pending {
		outcome[[2]string{m.Topic, "ok"}]--
		outcome[[2]string{m.Topic, "error"}]++
	}
	for k, n := range outcome {
		p.metrics.published.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	if err != nil {
		return fmt.Errorf("events: publish: %d of %d records failed: %w", len(pending), len(msgs), err)
	}
	return nil
}

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }
