package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// topicEnd is the sum of a topic's partitions' end offsets: the records
// ever written to it.
func topicEnd(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := events.PartitionCount(ctx, events.Security{}, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range n {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	offs, err := (&kafka.Client{Addr: kafka.TCP(brokers...)}).ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range offs.Topics[topic] {
		sum += p.LastOffset
	}
	return sum
}

func healthReports(n int) []schema.Message {
	ms := make([]schema.Message, n)
	for i := range ms {
		ms[i] = &schema.Health{NodeID: fmt.Sprintf("node-%05d", i), ObservedAt: now,
			Interfaces: []schema.InterfaceHealth{{Name: "zookeeper", State: schema.StateActive, Status: schema.HealthPassing}}}
	}
	return ms
}

// TestSendInChunks: a batch larger than a chunk (encoded on several
// workers) is written whole and in order; one whose message fails to
// encode has the chunks before it written, and the error says how many
// records were; a batch of one chunk with bad messages writes nothing and
// fails with the first bad one's error.
func TestSendInChunks(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		m, _ := testMetrics(t)
		pub := producer(t, brokers, m)
		enc := encoder(tp, nil)
		size, err := pub.Send(context.Background(), enc, healthReports(10_000)...)
		if err != nil {
			t.Fatal(err)
		}
		recs := dlqRecords(t, brokers, tp.Events, 10_000) // every record, partition by partition
		last := map[int]string{}
		for _, rec := range recs {
			if k := string(rec.Key); k <= last[rec.Partition] {
				t.Fatalf("partition %d: %s after %s; want the order sent", rec.Partition, k, last[rec.Partition])
			}
			last[rec.Partition] = string(rec.Key)
		}
		if size <= 0 {
			t.Fatalf("size %d", size)
		}

		ms := healthReports(10_000)
		ms[9_000].(*schema.Health).NodeID = "-not-an-id"
		_, err = pub.Send(context.Background(), enc, ms...)
		if err == nil || !strings.Contains(err.Error(), "8192 of 10000 records written") {
			t.Fatalf("err %v: want the two chunks before the bad message written", err)
		}
		if got := topicEnd(t, brokers, tp.Events); got != 10_000+8_192 {
			t.Fatalf("%d records on the topic; want 18192", got)
		}

		ms = healthReports(1_000)
		ms[700].(*schema.Health).NodeID = "-bad-700"
		ms[900].(*schema.Health).NodeID = "-bad-900"
		_, err = pub.Send(context.Background(), enc, ms...)
		if !errors.Is(err, schema.ErrInvalid) || !strings.Contains(err.Error(), "-bad-700") {
			t.Fatalf("err %v: want the first bad message's (-bad-700)", err)
		}
		if got := topicEnd(t, brokers, tp.Events); got != 10_000+8_192 {
			t.Fatalf("%d records on the topic; want nothing more written (18192)", got)
		}
	})
}
