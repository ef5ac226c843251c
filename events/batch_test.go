package events_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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

// healthEvents encodes n health reports of nodes node-0 … node-(nodes-1)
// in turn, the i-th observed i seconds after now.
func healthEvents(t testing.TB, tp events.Topics, n, nodes int) []kafka.Message {
	t.Helper()
	enc := encoder(tp, nil)
	h := example(t, schema.TypeHealth).(*schema.Health)
	recs := make([]kafka.Message, n)
	for i := range recs {
		h.NodeID = fmt.Sprintf("node-%d", i%nodes)
		h.ObservedAt = now.Add(time.Duration(i) * time.Second)
		recs[i] = encode(t, enc, h)
	}
	return recs
}

// batchConsumer runs a batch consumer of topic in group "g-"+topic.
func batchConsumer(t testing.TB, brokers []string, topic, dlq string, h events.BatchHandler, m *events.Metrics, pub events.Publisher, edit func(*events.ConsumerConfig)) {
	t.Helper()
	cfg := events.DefaultConsumerConfig(brokers, topic, dlq)
	cfg.RetryInitial, cfg.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	c, err := events.NewGroupBatchConsumer(cfg, "g-"+topic, events.Validator{Class: schema.ClassEvent}, h, pub, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
}

// countCommits counts the offset commits the broker is sent.
func countCommits(c *kfake.Cluster) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false // only counted: the broker handles it
	})
	return &n
}

// committed returns group's committed offset of each of topic's partitions
// (-1 where none is).
func committed(t testing.TB, brokers []string, group, topic string) map[int]int64 {
	t.Helper()
	parts := make([]int, partitions(t, brokers, topic))
	for i := range parts {
		parts[i] = i
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// awaitCommitted waits until group "g-"+topic has committed the first n
// records of key's partition, and returns that partition.
func awaitCommitted(t testing.TB, brokers []string, topic, key string, n int64) int {
	t.Helper()
	part := events.Partition([]byte(key), partitions(t, brokers, topic))
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records committed", n), func() bool {
		return committed(t, brokers, "g-"+topic, topic)[part] == n
	})
	return part
}

// deadLetterReasons reads the want dead letters of dlq and returns each
// one's reason by the offset it had in its own topic.
func deadLetterReasons(t testing.TB, brokers []string, dlq string, want int) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, dl := range dlqRecords(t, brokers, dlq, want) {
		off, _ := headerValue(dl, events.HeaderDLQOffset)
		got[off], _ = headerValue(dl, events.HeaderDLQReason)
	}
	return got
}

// offsetOf is a record's coordinates, for comparing what was handled.
type offsetOf struct {
	Partition int
	Offset    int64
}

func coordinates(ds []events.Delivery) []offsetOf {
	out := make([]offsetOf, len(ds))
	for i, d := range ds {
		out[i] = offsetOf{d.Record.Partition, d.Record.Offset}
	}
	return out
}

// batchCalls is a batch handler that keeps the coordinates of what each
// call was given.
type batchCalls struct {
	mu  sync.Mutex
	got [][]offsetOf
}

func (c *batchCalls) handle(_ context.Context, ds []events.Delivery) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, coordinates(ds))
	return nil
}

func (c *batchCalls) all() [][]offsetOf {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]offsetOf(nil), c.got...)
}

// TestBatchConsumerKeepsOrderAndCommitsOncePerBatch: 1,000 health reports
// of 50 nodes over six partitions come to the handler in batches of at
// most MaxBatch, each partition's in log order and each record once, and
// the consumer commits once per batch.
func TestBatchConsumerKeepsOrderAndCommitsOncePerBatch(t *testing.T) {
	cluster, brokers := embeddedKafka(t)
	commits := countCommits(cluster)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	const n = 1000
	recs := healthEvents(t, tp, n, 50)
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	ends := map[int]int64{} // partition -> offset after its last record
	for _, rec := range recs {
		ends[events.Partition(rec.Key, 6)]++
	}

	var mu sync.Mutex
	var batches [][]offsetOf
	handled := 0
	batchConsumer(t, brokers, tp.Events, tp.DLQ, func(_ context.Context, ds []events.Delivery) []error {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, coordinates(ds))
		handled += len(ds)
		return nil
	}, m, pub, func(c *events.ConsumerConfig) { c.MaxBatch, c.BatchWait = 100, 50*time.Millisecond })

	waitFor(t, 60*time.Second, "every record handled and committed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := committed(t, brokers, "g-"+tp.Events, tp.Events)
		for p, end := range ends {
			if got[p] != end {
				return false
			}
		}
		return handled == n && commits.Load() == int64(len(batches))
	})
	mu.Lock()
	defer mu.Unlock()
	next := map[int]int64{}
	for i, b := range batches {
		if len(b) > 100 {
			t.Errorf("batch %d holds %d records, MaxBatch is 100", i, len(b))
		}
		for _, c := range b {
			if c.Offset != next[c.Partition] {
				t.Fatalf("batch %d: partition %d offset %d handled after %d", i, c.Partition, c.Offset, next[c.Partition]-1)
			}
			next[c.Partition]++
		}
	}
	if len(batches) >= n/10 {
		t.Errorf("%d batches for %d records: not batching", len(batches), n)
	}
	if got := counter(t, reg, "regshift_events_consumed_total", map[string]string{"outcome": "handled"}); got != n {
		t.Errorf("%v records counted as handled, want %d", got, n)
	}
	t.Logf("%d records in %d batches, %d commits", n, len(batches), commits.Load())
}

// TestBatchConsumerRetriesFromTheFirstRetriableFailure: in a batch of five
// records of one partition, the handler fails the second for good, the
// third for now and the fifth for good. The second is dead-lettered, and
// the third, fourth and fifth are handed again — whatever was said of the
// fifth — where the fifth is now refused as stale-epoch. One commit covers
// the batch.
func TestBatchConsumerRetriesFromTheFirstRetriableFailure(t *testing.T) {
	cluster, brokers := embeddedKafka(t)
	commits := countCommits(cluster)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	if err := pub.Publish(context.Background(), healthEvents(t, tp, 5, 1)...); err != nil {
		t.Fatal(err)
	}
	busy := fmt.Errorf("registry busy: %w", kafka.RequestTimedOut)
	stale := &events.RejectError{Reason: events.ReasonStaleEpoch, Err: errors.New("old leader")}
	results := [][]error{
		{nil, errors.New("cannot apply"), busy, nil, errors.New("not looked at")},
		{nil, nil, stale},
	}
	var mu sync.Mutex
	var calls [][]int64
	batchConsumer(t, brokers, tp.Events, tp.DLQ, func(_ context.Context, ds []events.Delivery) []error {
		mu.Lock()
		defer mu.Unlock()
		var offs []int64
		for _, c := range coordinates(ds) {
			offs = append(offs, c.Offset)
		}
		calls = append(calls, offs)
		if len(calls) > len(results) {
			return nil
		}
		return results[len(calls)-1]
	}, m, pub, func(c *events.ConsumerConfig) { c.MaxBatch, c.BatchWait = 5, 5*time.Second })

	awaitCommitted(t, brokers, tp.Events, "node-0", 5)
	mu.Lock()
	if want := [][]int64{{0, 1, 2, 3, 4}, {2, 3, 4}}; !reflect.DeepEqual(calls, want) {
		t.Errorf("handler calls %v, want %v", calls, want)
	}
	mu.Unlock()
	if got, want := deadLetterReasons(t, brokers, tp.DLQ, 2), map[string]string{"1": string(events.ReasonHandlerFailed), "4": string(events.ReasonStaleEpoch)}; !reflect.DeepEqual(got, want) {
		t.Errorf("dead letters (offset: reason) %v, want %v", got, want)
	}
	if n := commits.Load(); n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if n := counter(t, reg, "regshift_events_consumer_errors_total", map[string]string{"op": "handle"}); n != 1 {
		t.Errorf("%v handle retries counted, want 1", n)
	}
}

// TestBatchConsumerDeadLettersBadRecordsMidBatch: two bad records between
// three good ones of one partition go to the dead-letter topic with their
// reasons; the handler gets the good ones in one call, in order, and the
// batch is committed past all five.
func TestBatchConsumerDeadLettersBadRecordsMidBatch(t *testing.T) {
	_, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, _ := testMetrics(t)
	pub := producer(t, brokers, m)
	recs := healthEvents(t, tp, 5, 1)
	recs[1].Value = []byte("{not json")
	recs[3] = dropHeader(recs[3], events.HeaderType)
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	var calls batchCalls
	batchConsumer(t, brokers, tp.Events, tp.DLQ, calls.handle, m, pub, func(c *events.ConsumerConfig) { c.MaxBatch, c.BatchWait = 5, 5*time.Second })

	part := awaitCommitted(t, brokers, tp.Events, "node-0", 5)
	if got, want := calls.all(), [][]offsetOf{{{part, 0}, {part, 2}, {part, 4}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("handler calls %v, want %v", got, want)
	}
	if got, want := deadLetterReasons(t, brokers, tp.DLQ, 2), map[string]string{"1": string(events.ReasonInvalidBody), "3": string(events.ReasonMissingAttribute)}; !reflect.DeepEqual(got, want) {
		t.Errorf("dead letters (offset: reason) %v, want %v", got, want)
	}
}

// TestBatchHandlerWithTooFewResults: a handler that answers a batch with a
// result slice of another length has a bug; the batch is dead-lettered as
// handler-failed rather than handled or retried forever.
func TestBatchHandlerWithTooFewResults(t *testing.T) {
	_, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, _ := testMetrics(t)
	pub := producer(t, brokers, m)
	if err := pub.Publish(context.Background(), healthEvents(t, tp, 3, 1)...); err != nil {
		t.Fatal(err)
	}
	batchConsumer(t, brokers, tp.Events, tp.DLQ, func(context.Context, []events.Delivery) []error {
		return []error{nil}
	}, m, pub, func(c *events.ConsumerConfig) { c.MaxBatch, c.BatchWait = 3, 5*time.Second })
	awaitCommitted(t, brokers, tp.Events, "node-0", 3)
	for _, dl := range dlqRecords(t, brokers, tp.DLQ, 3) {
		if r, _ := headerValue(dl, events.HeaderDLQReason); r != string(events.ReasonHandlerFailed) {
			t.Errorf("dead letter reason %q, want handler-failed", r)
		}
	}
}

// TestBatchConsumerDecodesInParallelInOrder: a batch of 300 records of one
// partition, every seventh not JSON, decoded by four goroutines: the
// handler gets the good ones in log order in one call, the bad ones are
// dead-lettered, and the batch is committed.
func TestBatchConsumerDecodesInParallelInOrder(t *testing.T) {
	_, brokers := embeddedKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	recs := healthEvents(t, tp, 300, 1)
	var want []offsetOf
	part := events.Partition([]byte("node-0"), 6)
	for i := range recs {
		if i%7 == 3 {
			recs[i].Value = []byte("{not json")
			continue
		}
		want = append(want, offsetOf{part, int64(i)})
	}
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	var calls batchCalls
	batchConsumer(t, brokers, tp.Events, tp.DLQ, calls.handle, m, pub, func(c *events.ConsumerConfig) { c.MaxBatch, c.BatchWait, c.DecodeWorkers = 300, 5*time.Second, 4 })
	awaitCommitted(t, brokers, tp.Events, "node-0", 300)
	if got := calls.all(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("handler calls %v, want one with %v", got, want)
	}
	if n := counter(t, reg, "regshift_events_dead_letters_total", map[string]string{"reason": string(events.ReasonInvalidBody)}); n != float64(300-len(want)) {
		t.Errorf("%v dead letters, want %d", n, 300-len(want))
	}
}

// TestBatchConsumerCommitsInTheBackground: with CommitEvery, a batch
// consumer hands on without waiting for commits, and its offsets are still
// committed within about that interval: a restart does not read them again.
func TestBatchConsumerCommitsInTheBackground(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		m, _ := testMetrics(t)
		pub := producer(t, brokers, m)
		recs := healthEvents(t, tp, 1000, 1) // one node: one partition, 1,000 records
		if err := pub.Publish(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
		var seen atomic.Int64
		batchConsumer(t, brokers, tp.Events, tp.DLQ, func(_ context.Context, ds []events.Delivery) []error {
			seen.Add(int64(len(ds)))
			return nil
		}, m, pub, func(c *events.ConsumerConfig) { c.CommitEvery = 100 * time.Millisecond })
		waitFor(t, 60*time.Second, "1000 records handled", func() bool { return seen.Load() == 1000 })
		awaitCommitted(t, brokers, tp.Events, "node-0", 1000)
	})
}
