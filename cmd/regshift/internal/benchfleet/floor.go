package benchfleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/events"
)

// floorRecord is the value of every raw-floor record: small, like a short
// command or ack.
var floorRecord = bytes.Repeat([]byte("x"), 100)

// rawFloor measures the broker's own round for n nodes: a plain kafka-go
// keyed produce of n small records to a topic of partitions partitions,
// one reader per partition answering each record with an ack record
// (batched, as the fleet's acks are), and readers collecting the n acks.
// It returns the time from the first produce to the last ack. Its topics
// are made under prefix and deleted afterwards.
func rawFloor(ctx context.Context, brokers []string, prefix string, n, partitions int, log *slog.Logger) (time.Duration, error) {
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.CommandPartitions = prefix, partitions
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		return 0, err
	}
	defer deleteTopics(brokers, topics)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topics.Commands, Key: []byte(nodeID(i)), Value: floorRecord}
	}
	out, in := producerConfig(brokers).NewWriter(), producerConfig(brokers).NewWriter()
	defer out.Close()
	defer in.Close()
	acks := newBatcher(writerPublisher{out}, log)
	var got atomic.Int64
	all := make(chan struct{})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return acks.Run(gctx) })
	read := func(topic string, p int, each func(kafka.Message)) {
		g.Go(func() error {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 10 << 20,
				MaxWait: 250 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("raw floor: read %s/%d: %w", topic, p, err)
				}
				each(m)
			}
		})
	}
	var warmed atomic.Int64
	warm := make([]kafka.Message, min(n, 1000))
	for p := range partitions {
		read(topics.Commands, p, func(m kafka.Message) {
			acks.add(gctx, kafka.Message{Topic: topics.Events, Key: m.Key, Value: m.Value}) // a warm-up is answered as one
		})
	}
	for p := range tcfg.EventPartitions {
		read(topics.Events, p, func(m kafka.Message) {
			switch {
			case len(m.Value) != len(floorRecord):
				warmed.Add(1)
			case got.Add(1) == int64(n):
				close(all)
			}
		})
	}

	// A warm-up round first: right after topics are made, a broker may
	// still refuse writes to some partitions (not leader yet), and the
	// writers learn the partitions' leaders.
	for i := range warm {
		warm[i] = kafka.Message{Topic: topics.Commands, Key: []byte(nodeID(i)), Value: []byte("w")}
	}
	if err := warmUp(ctx, in, warm, &warmed); err != nil {
		return 0, err
	}
	start := time.Now()
	err = in.WriteMessages(ctx, msgs...)
	if err == nil {
		select {
		case <-all:
		case <-gctx.Done():
			err = fmt.Errorf("raw floor: %d of %d acks", got.Load(), n)
		case <-time.After(10 * time.Minute):
			err = fmt.Errorf("raw floor: %d of %d acks within 10 minutes", got.Load(), n)
		}
	}
	took := time.Since(start)
	cancel()
	if werr := g.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return 0, err
	}
	return took, nil
}

// warmUp writes msgs, again while the broker refuses some, and waits until
// as many acks were counted in warmed.
func warmUp(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, warmed *atomic.Int64) error {
	deadline, want := time.Now().Add(time.Minute), int64(len(msgs))
	if err := writeAll(ctx, w, msgs, deadline); err != nil {
		return fmt.Errorf("raw floor: warm-up: %w", err)
	}
	for warmed.Load() < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("raw floor: warm-up: %d of %d acks within a minute", warmed.Load(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// writeAll writes msgs with a plain kafka-go writer, writing again the
// records a broker refused (right after topics are made, a partition may
// have no leader yet) until deadline.
func writeAll(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, deadline time.Time) error {
	for {
		err := w.WriteMessages(ctx, msgs...)
		var we kafka.WriteErrors
		if err == nil || !errors.As(err, &we) || !time.Now().Before(deadline) {
			return err
		}
		failed := msgs[:0:0]
		for i, e := range we {
			if e != nil {
				failed = append(failed, msgs[i])
			}
		}
		msgs = failed
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
