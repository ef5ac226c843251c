package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
)

func TestRetriable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"wrapped reset", fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{"eof", io.ErrUnexpectedEOF, true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"leader moved", kafka.NotLeaderForPartition, true},
		{"leader not available", kafka.LeaderNotAvailable, true},
		{"message too large", kafka.MessageSizeTooLarge, false},
		{"not authorized", kafka.TopicAuthorizationFailed, false},
		{"write errors all retriable", kafka.WriteErrors{nil, kafka.NotEnoughReplicas, kafka.RequestTimedOut}, true},
		{"write errors one fatal", kafka.WriteErrors{kafka.NotEnoughReplicas, kafka.MessageSizeTooLarge}, false},
		{"rejection", &events.RejectError{Reason: events.ReasonExpired, Err: errors.New("late")}, false},
		{"unknown", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.Retriable(tc.err); got != tc.want {
				t.Fatalf("Retriable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// nopPublisher drops what it is given.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...kafka.Message) error { return nil }

func TestConfigsValidate(t *testing.T) {
	m, _ := testMetrics(t)
	log := testLogger(t)
	brokers := []string{"127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"producer without brokers", func() error {
			_, err := events.NewProducer(events.DefaultProducerConfig(nil), log, m)
			return err
		}},
		{"producer batch size 0", func() error {
			c := events.DefaultProducerConfig(brokers)
			c.BatchSize = 0
			_, err := events.NewProducer(c, log, m)
			return err
		}},
		{"producer batch timeout 0", func() error {
			c := events.DefaultProducerConfig(brokers)
			c.BatchTimeout = 0
			_, err := events.NewProducer(c, log, m)
			return err
		}},
		{"producer with records capped below its batches", func() error {
			c := events.DefaultProducerConfig(brokers)
			c.MaxRecordBytes = c.BatchBytes - 1
			_, err := events.NewProducer(c, log, m)
			return err
		}},
		{"group consumer batch of 0", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			c.MaxBatch = 0
			_, err := events.NewGroupBatchConsumer(c, "g", events.Validator{}, func(context.Context, []events.Delivery) []error { return nil }, nopPublisher{}, log, m)
			return err
		}},
		{"group consumer without batch wait", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			c.BatchWait = 0
			_, err := events.NewGroupBatchConsumer(c, "g", events.Validator{}, func(context.Context, []events.Delivery) []error { return nil }, nopPublisher{}, log, m)
			return err
		}},
		{"consumer with negative decode workers", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			c.DecodeWorkers = -1
			_, err := events.NewGroupConsumer(c, "g", events.Validator{}, func(context.Context, events.Delivery) error { return nil }, nopPublisher{}, log, m)
			return err
		}},
		{"consumer fetching 0 bytes", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			c.MaxBytes = 0
			_, err := events.NewGroupConsumer(c, "g", events.Validator{}, func(context.Context, events.Delivery) error { return nil }, nopPublisher{}, log, m)
			return err
		}},
		{"consumer without DLQ", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "")
			_, err := events.NewGroupConsumer(c, "g", events.Validator{}, func(context.Context, events.Delivery) error { return nil }, nil, log, m)
			return err
		}},
		{"group consumer without group", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			_, err := events.NewGroupConsumer(c, "", events.Validator{}, func(context.Context, events.Delivery) error { return nil }, nil, log, m)
			return err
		}},
		{"partition consumer without offsets", func() error {
			c := events.DefaultConsumerConfig(brokers, "t", "d")
			_, err := events.NewPartitionConsumer(c, 0, nil, events.Validator{}, func(context.Context, events.Delivery) error { return nil }, nil, log, m)
			return err
		}},
		{"command verifier without node", func() error {
			_, err := events.NewCommandVerifier(events.DefaultCommandVerifierConfig(""), events.NewKeyring(), events.NewReplay())
			return err
		}},
		{"command verifier without skew", func() error {
			c := events.DefaultCommandVerifierConfig(node)
			c.MaxSkew = 0
			_, err := events.NewCommandVerifier(c, events.NewKeyring(), events.NewReplay())
			return err
		}},
		{"request verifier without max age", func() error {
			c := events.DefaultRequestVerifierConfig()
			c.MaxAge = -time.Second
			_, err := events.NewRequestVerifier(c, events.NewKeyring())
			return err
		}},
		{"topics with one replica too few", func() error {
			c := events.DefaultTopicsConfig()
			c.ReplicationFactor = 0
			_, err := events.Bootstrap(context.Background(), brokers, c)
			return err
		}},
		{"topics with requests limited below the others", func() error {
			c := events.DefaultTopicsConfig()
			c.RequestMaxMessageBytes = c.MaxMessageBytes - 1
			_, err := events.Bootstrap(context.Background(), brokers, c)
			return err
		}},
		{"topics with min.insync above replicas", func() error {
			c := events.DefaultTopicsConfig()
			c.MinInsyncReplicas = 2
			_, err := events.Bootstrap(context.Background(), brokers, c)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
