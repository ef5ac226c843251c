package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
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
	// BatchBytes caps the records kafka-go sends to one partition in one
	// produce request. The broker checks a topic's max.message.bytes
	// against that whole batch, so BatchBytes stays below the smallest
	// limit of the topics written (TopicsConfig.MaxMessageBytes). A record
	// larger than BatchBytes goes alone, in a batch of its own. Default
	// DefaultMaxMessageBytes less 16 KiB (1,032,192).
	BatchBytes int64
	// MaxRecordBytes is the largest record Publish sends: key, value and
	// headers with kafka-go's framing. Publish refuses a larger one with a
	// *RecordTooLargeError before sending anything. Default
	// DefaultRequestMaxMessageBytes + DeadLetterHeadroom, the dead-letter
	// topic's limit and the largest Bootstrap sets; a record that passes
	// but exceeds its own topic's limit is refused by the broker, at once,
	// with the same error.
	MaxRecordBytes int64
	// LargeCompression compresses the records larger than BatchBytes (a
	// create-rollout of many nodes, its dead letter); smaller ones go
	// uncompressed. Default compress.Snappy: a create of 100,000 nodes goes
	// from 5.8 MB to 0.5 MB in 6 ms. 0 sends them as they are. The limits
	// above count the bytes before compression, the broker after.
	LargeCompression kafka.Compression
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
	return ProducerConfig{Brokers: brokers, BatchSize: 100, BatchTimeout: time.Millisecond,
		BatchBytes: DefaultMaxMessageBytes - 16<<10, MaxRecordBytes: DefaultRequestMaxMessageBytes + DeadLetterHeadroom,
		LargeCompression: compress.Snappy, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, WriterAttempts: 3,
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
	if c.MaxRecordBytes < c.BatchBytes {
		errs = append(errs, fmt.Errorf("MaxRecordBytes %d is below BatchBytes %d", c.MaxRecordBytes, c.BatchBytes))
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

// NewWriter returns the kafka-go Writer the producer sends records of up
// to BatchBytes with, every setting explicit: acks from all in-sync
// replicas, synchronous, KeyBalancer, no topic auto-creation, no
// compression. The topic is taken from each record.
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

// largeWriter is NewWriter's twin for the records above BatchBytes: one a
// batch, compressed with LargeCompression.
func (c ProducerConfig) largeWriter() *kafka.Writer {
	w := c.NewWriter()
	w.BatchSize = 1
	w.BatchBytes = c.MaxRecordBytes + recordFraming // what recordBytes lets through, kafka-go must not refuse
	w.Compression = c.LargeCompression
	return w
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
	small   *kafka.Writer // records up to BatchBytes, batched
	large   *kafka.Writer // the larger ones, alone and compressed
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
	return &Producer{cfg: cfg, small: cfg.NewWriter(), large: cfg.largeWriter(), log: log.With("component", "events.producer"), metrics: m}, nil
}

// Publish writes msgs (each with its Topic set) and returns once every
// in-sync replica has them. Records that failed with a retriable error are
// retried with backoff; it returns the first error that is not retriable,
// or the last one when the retry budget or ctx ends. A record larger than
// MaxRecordBytes fails the call before anything is sent, and one the
// broker finds larger than its topic's max.message.bytes fails it without
// retries; both with a *RecordTooLargeError.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if n := recordBytes(m); n > p.cfg.MaxRecordBytes {
			for _, m := range msgs {
				p.metrics.published.WithLabelValues(m.Topic, "error").Inc()
			}
			return fmt.Errorf("events: publish: %w", &RecordTooLargeError{Index: i, Topic: m.Topic, Key: string(m.Key), Bytes: n, Limit: p.cfg.MaxRecordBytes})
		}
	}
	start := time.Now()
	pending := make([]int, len(msgs)) // indexes into msgs
	for i := range pending {
		pending[i] = i
	}
	attempt := func() error {
		failed, err := p.write(ctx, msgs, pending)
		pending = failed
		if err == nil {
			return nil
		}
		if !Retriable(err) {
			return backoff.Permanent(err)
		}
		for _, i := range pending {
			p.metrics.publishRetries.WithLabelValues(msgs[i].Topic).Inc()
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
	for _, i := range pending {
		outcome[[2]string{msgs[i].Topic, "ok"}]--
		outcome[[2]string{msgs[i].Topic, "error"}]++
	}
	for k, n := range outcome {
		p.metrics.published.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("events: publish: %d of %d records failed: %w", len(pending), len(msgs), err)
}

// write sends the records at indexes in order, each run of small or of
// large ones through its writer, and stops at the first run that fails. It
// returns the indexes not known to be written and the error: a
// *RecordTooLargeError when the broker refused a record for its size.
func (p *Producer) write(ctx context.Context, msgs []kafka.Message, indexes []int) ([]int, error) {
	for len(indexes) > 0 {
		large := recordBytes(msgs[indexes[0]]) > p.cfg.BatchBytes
		n := 1
		for n < len(indexes) && (recordBytes(msgs[indexes[n]]) > p.cfg.BatchBytes) == large {
			n++
		}
		run := make([]kafka.Message, n)
		for j, i := range indexes[:n] {
			run[j] = msgs[i]
		}
		w := p.small
		if large {
			w = p.large
		}
		err := w.WriteMessages(ctx, run...)
		if err == nil {
			indexes = indexes[n:]
			continue
		}
		var we kafka.WriteErrors
		if !errors.As(err, &we) || len(we) != n {
			if errors.Is(err, kafka.MessageSizeTooLarge) {
				err = p.tooLarge(msgs, indexes[0], err)
			}
			return indexes, err
		}
		failed := make([]int, 0, len(indexes))
		var tl error
		for j, e := range we {
			if e == nil {
				continue
			}
			failed = append(failed, indexes[j])
			if tl == nil && errors.Is(e, kafka.MessageSizeTooLarge) {
				tl = p.tooLarge(msgs, indexes[j], e)
			}
		}
		if tl != nil {
			err = tl
		}
		return append(failed, indexes[n:]...), err
	}
	return nil, nil
}

func (p *Producer) tooLarge(msgs []kafka.Message, i int, err error) error {
	return &RecordTooLargeError{Index: i, Topic: msgs[i].Topic, Key: string(msgs[i].Key), Bytes: recordBytes(msgs[i]), Err: err}
}

// Close flushes and closes the writers.
func (p *Producer) Close() error { return errors.Join(p.small.Close(), p.large.Close()) }
