package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// topicMaxBytes reads each topic's max.message.bytes from the broker.
func topicMaxBytes(t testing.TB, brokers []string, topics ...string) map[string]int {
	t.Helper()
	req := &kafka.DescribeConfigsRequest{}
	for _, topic := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic, ConfigNames: []string{"max.message.bytes"}})
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.DescribeConfigs(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			out[r.ResourceName], _ = strconv.Atoi(e.ConfigValue)
		}
	}
	return out
}

// TestBootstrapSetsSizeLimits: every topic gets its max.message.bytes
// explicitly, the dead-letter topic room for a dead-lettered request.
func TestBootstrapSetsSizeLimits(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		got := topicMaxBytes(t, brokers, tp.Commands, tp.Events, tp.Requests, tp.State, tp.DLQ)
		want := map[string]int{tp.Commands: 1 << 20, tp.Events: 1 << 20, tp.State: 1 << 20,
			tp.Requests: 16 << 20, tp.DLQ: 16<<20 + 64<<10}
		for topic, w := range want {
			if got[topic] != w {
				t.Errorf("%s: max.message.bytes=%d, want %d", topic, got[topic], w)
			}
		}
	})
}

// TestBootstrapRefusesATopicTooSmall: an existing requests topic with the
// broker's usual 1 MiB limit cannot carry a large create-rollout; Bootstrap
// says so, naming the topic, the setting, what it found and what it wants,
// and changes nothing.
func TestBootstrapRefusesATopicTooSmall(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		cfg := events.DefaultTopicsConfig()
		cfg.Prefix = prefix(t)
		requests := events.NewTopics(cfg.Prefix).Requests
		client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
		resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: requests, NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "1048576"}}}}})
		if err == nil {
			err = resp.Errors[requests]
		}
		if err != nil {
			t.Fatal(err)
		}
		tp, err := events.Bootstrap(context.Background(), brokers, cfg)
		t.Cleanup(func() {
			_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{
				Topics: []string{tp.Commands, tp.Events, requests, tp.State, tp.DLQ}})
		})
		if !errors.Is(err, events.ErrTopicMismatch) {
			t.Fatalf("Bootstrap = %v, want ErrTopicMismatch", err)
		}
		for _, part := range []string{requests, "max.message.bytes=1048576", "want at least 16777216"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not say %q", err, part)
			}
		}
		if got := topicMaxBytes(t, brokers, requests)[requests]; got != 1<<20 {
			t.Errorf("Bootstrap changed the topic: max.message.bytes=%d", got)
		}
	})
}

// countProduces counts the produce requests the broker is sent.
func countProduces(c *kfake.Cluster) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// TestPublishRefusesARecordAboveMaxRecordBytes: a 20 MiB record fails at
// once with a *RecordTooLargeError naming its topic and size; nothing of
// the call reaches the broker.
func TestPublishRefusesARecordAboveMaxRecordBytes(t *testing.T) {
	cluster, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	produces := countProduces(cluster)
	small := kafka.Message{Topic: tp.Requests, Key: []byte("ro-1"), Value: []byte("{}")}
	big := kafka.Message{Topic: tp.Requests, Key: []byte("ro-2"), Value: bytes.Repeat([]byte("x"), 20<<20)}
	start := time.Now()
	err := pub.Publish(context.Background(), small, big)
	took := time.Since(start)
	var tl *events.RecordTooLargeError
	if !errors.Is(err, events.ErrRecordTooLarge) || !errors.As(err, &tl) {
		t.Fatalf("Publish = %v, want a RecordTooLargeError", err)
	}
	if tl.Index != 1 || tl.Topic != tp.Requests || tl.Key != "ro-2" || tl.Bytes < 20<<20 || tl.Limit != 16<<20+64<<10 {
		t.Errorf("error %+v, want record 1 of topic %s, key ro-2, above 20 MiB, limit 16 MiB + 64 KiB", tl, tp.Requests)
	}
	if events.Retriable(err) {
		t.Error("a record too large counts as retriable")
	}
	if n := produces.Load(); n != 0 {
		t.Errorf("%d produce requests sent, want none", n)
	}
	if n := counter(t, reg, "regshift_events_published_total", map[string]string{"outcome": "error"}); n != 2 {
		t.Errorf("%v records counted as failed, want 2", n)
	}
	t.Logf("refused in %v: %v", took, err)
}

// TestBrokerRefusalIsRecordTooLarge: a 2 MiB record passes MaxRecordBytes
// but not the state topic's 1 MiB; the broker's refusal comes back as a
// *RecordTooLargeError at once, without retries.
func TestBrokerRefusalIsRecordTooLarge(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		m, reg := testMetrics(t)
		pub := producer(t, brokers, m)
		noise := make([]byte, 2<<20) // incompressible: the broker counts a batch's bytes after compression
		_, _ = rand.Read(noise)
		rec := kafka.Message{Topic: tp.State, Key: []byte("ro-1"), Value: noise}
		err := pub.Publish(context.Background(), rec)
		var tl *events.RecordTooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, kafka.MessageSizeTooLarge) {
			t.Fatalf("Publish = %v, want a RecordTooLargeError from the broker", err)
		}
		if tl.Topic != tp.State || tl.Limit != 0 {
			t.Errorf("error %+v, want the state topic, refused by the broker", tl)
		}
		if n := counter(t, reg, "regshift_events_publish_retries_total", nil); n != 0 {
			t.Errorf("%v retries, want none", n)
		}
	})
}

// TestManySmallRecordsFitTheSmallestLimit: the broker checks
// max.message.bytes against a whole batch of a partition's records, so
// 100 records of 100 KB in one call to the one-partition state topic (1
// MiB) only go through because the producer's batches stay below it.
func TestManySmallRecordsFitTheSmallestLimit(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		m, _ := testMetrics(t)
		pub := producer(t, brokers, m)
		recs := make([]kafka.Message, 100)
		for i := range recs {
			recs[i] = kafka.Message{Topic: tp.State, Key: []byte(fmt.Sprintf("node-%d", i)), Value: bytes.Repeat([]byte("x"), 100<<10)}
		}
		if err := pub.Publish(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	})
}

// bigCreate is a create-rollout of n nodes, each a consumer and a provider.
func bigCreate(t testing.TB, n int) *schema.CreateRollout {
	t.Helper()
	c := example(t, schema.TypeCreateRollout).(*schema.CreateRollout)
	c.Plan.Nodes = make([]schema.PlanNode, n)
	for i := range c.Plan.Nodes {
		c.Plan.Nodes[i] = schema.PlanNode{NodeID: fmt.Sprintf("node-%06d", i), Roles: []string{"consumer", "provider"}}
	}
	return c
}

// TestCreateRolloutOf100000NodesTravels: a signed create-rollout of
// 100,000 nodes (about 5 MB) is published, fetched and verified through
// the requests topic's limits, and dead-lettered whole when refused.
func TestCreateRolloutOf100000NodesTravels(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		m, reg := testMetrics(t)
		pub := producer(t, brokers, m)
		operator := newSigner(t, "alice")
		rec := encode(t, encoder(tp, operator), bigCreate(t, 100_000))
		t.Logf("create-rollout of 100,000 nodes: %d bytes", len(rec.Value))
		if len(rec.Value) < 4<<20 {
			t.Fatalf("record of %d bytes, want a large one", len(rec.Value))
		}
		if err := pub.Publish(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		nodes := make(chan int, 1)
		groupConsumer(t, brokers, tp.Requests, tp.DLQ, requestVerifier(t, operator), func(_ context.Context, d events.Delivery) error {
			nodes <- len(d.Message.(*schema.CreateRollout).Plan.Nodes)
			return errors.New("refused, to dead-letter it")
		}, m, pub)
		select {
		case n := <-nodes:
			if n != 100_000 {
				t.Errorf("handled a create of %d nodes, want 100,000", n)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the create was not handled within 60s")
		}
		awaitDeadLetters(t, reg, 1)
		dl := dlqRecords(t, brokers, tp.DLQ, 1)[0]
		if !bytes.Equal(dl.Value, rec.Value) {
			t.Errorf("dead letter of %d bytes, want the request's %d", len(dl.Value), len(rec.Value))
		}
	})
}

// TestLargeRecordsTravelCompressed: a create-rollout larger than
// BatchBytes reaches the broker compressed; small records do not.
func TestLargeRecordsTravelCompressed(t *testing.T) {
	cluster, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, _ := testMetrics(t)
	pub := producer(t, brokers, m)
	var mu sync.Mutex
	sent := map[string]int{} // topic -> record batch bytes received
	cluster.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, topic := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range topic.Partitions {
				sent[topic.Topic] += len(p.Records)
			}
		}
		return nil, nil, false
	})
	large := encode(t, encoder(tp, newSigner(t, "alice")), bigCreate(t, 100_000))
	small := healthEvents(t, tp, 1, 1)[0]
	if err := pub.Publish(context.Background(), large, small); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := sent[tp.Requests]; got == 0 || got > len(large.Value)/4 {
		t.Errorf("%d bytes of a %d-byte create reached the broker, want it compressed", got, len(large.Value))
	}
	if got := sent[tp.Events]; got < len(small.Value) {
		t.Errorf("%d bytes of a %d-byte health report reached the broker, want it as it is", got, len(small.Value))
	}
	t.Logf("create-rollout: %d bytes, %d on the wire", len(large.Value), sent[tp.Requests])
}

// TestDeadLetterTooLargeIsStripped: a dead letter larger than its
// producer takes goes to the dead-letter topic without the record, marked
// with the record's size, rather than stalling its partition.
func TestDeadLetterTooLargeIsStripped(t *testing.T) {
	_, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	pcfg := events.DefaultProducerConfig(brokers)
	pcfg.BatchBytes, pcfg.MaxRecordBytes = 16<<10, 64<<10
	dlqPub, err := events.NewProducer(pcfg, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dlqPub.Close() })
	recs := healthEvents(t, tp, 2, 1)
	recs[0].Value = bytes.Repeat([]byte("x"), 100<<10) // not JSON: dead-lettered
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	got := newCollector()
	groupConsumer(t, brokers, tp.Events, tp.DLQ, events.Validator{Class: schema.ClassEvent}, got.handle, m, dlqPub)
	waitFor(t, 60*time.Second, "the record after it", func() bool { return got.len() == 1 })
	awaitDeadLetters(t, reg, 1)
	dl := dlqRecords(t, brokers, tp.DLQ, 1)[0]
	size, _ := headerValue(dl, events.HeaderDLQDropped)
	reason, _ := headerValue(dl, events.HeaderDLQReason)
	if size != strconv.Itoa(100<<10) || len(dl.Value) != 0 || reason != string(events.ReasonInvalidBody) {
		t.Errorf("dead letter of %d bytes, %s=%q, reason %q; want no value, the size %d and invalid-body",
			len(dl.Value), events.HeaderDLQDropped, size, reason, 100<<10)
	}
	if _, ok := headerValue(dl, events.HeaderType); ok {
		t.Error("the stripped dead letter kept the record's headers")
	}
}
