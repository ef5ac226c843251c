package events_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// eachBroker runs f on the embedded broker and on the real one: one suite,
// both implementations of the protocol.
func eachBroker(t *testing.T, f func(t *testing.T, brokers []string)) {
	t.Run("kfake", func(t *testing.T) {
		_, brokers := embeddedKafka(t)
		f(t, brokers)
	})
	t.Run("kafka", func(t *testing.T) { f(t, servers.RequireKafka(t)) })
}

// prefix is a topic prefix no other test run shares.
func prefix(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("regshift.test.%s.%d.", name, time.Now().UnixNano())
}

func bootstrap(t testing.TB, brokers []string, edit func(*events.TopicsConfig)) events.Topics {
	t.Helper()
	cfg := events.DefaultTopicsConfig()
	cfg.Prefix = prefix(t)
	cfg.CommandPartitions = 4
	if edit != nil {
		edit(&cfg)
	}
	tp, err := events.Bootstrap(context.Background(), brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{
			Topics: []string{tp.Commands, tp.Events, tp.Requests, tp.State, tp.DLQ}})
	})
	return tp
}

func producer(t testing.TB, brokers []string, m *events.Metrics) *events.Producer {
	t.Helper()
	p, err := events.NewProducer(events.DefaultProducerConfig(brokers), testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// run starts a loop and stops it at cleanup, failing the test if it
// returned an error.
func run(t testing.TB, loop interface{ Run(context.Context) error }) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
	})
}

// memOffsets is the agent side's offset store, in memory.
type memOffsets struct {
	mu   sync.Mutex
	next int64
}

func (o *memOffsets) Load(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next, nil
}

func (o *memOffsets) Save(_ context.Context, next int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next = next
	return nil
}

// collector is a handler that keeps what it was given, once per ce_id.
type collector struct {
	mu    sync.Mutex
	byID  map[string]schema.Message
	order []string
	dups  int
}

func newCollector() *collector { return &collector{byID: map[string]schema.Message{}} }

func (c *collector) handle(_ context.Context, d events.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[d.Envelope.ID]; ok {
		c.dups++
		return nil
	}
	c.byID[d.Envelope.ID] = d.Message
	c.order = append(c.order, d.Envelope.ID)
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

func (c *collector) get(id string) (schema.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.byID[id]
	return m, ok
}

func groupConsumer(t testing.TB, brokers []string, topic, dlq string, dec events.Decoder, h events.Handler, m *events.Metrics, dlqPub events.Publisher) {
	t.Helper()
	cfg := events.DefaultConsumerConfig(brokers, topic, dlq)
	c, err := events.NewGroupConsumer(cfg, "g-"+topic, dec, h, dlqPub, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
}

func partitionConsumer(t testing.TB, brokers []string, tp events.Topics, partition int, offsets events.OffsetStore, dec events.Decoder, h events.Handler, m *events.Metrics, dlqPub events.Publisher) {
	t.Helper()
	cfg := events.DefaultConsumerConfig(brokers, tp.Commands, tp.DLQ)
	c, err := events.NewPartitionConsumer(cfg, partition, offsets, dec, h, dlqPub, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c.WithName(node))
}

func TestBootstrapIsIdempotentAndChecksTopics(t *testing.T) {
	brokers := servers.RequireKafka(t)
	ctx := context.Background()
	tp := bootstrap(t, brokers, nil)
	cfg := events.DefaultTopicsConfig()
	cfg.Prefix = strings.TrimSuffix(tp.Commands, "commands")
	cfg.CommandPartitions = 4
	again, err := events.Bootstrap(ctx, brokers, cfg)
	if err != nil || again != tp {
		t.Fatalf("second bootstrap = %+v, %v", again, err)
	}
	for topic, want := range map[string]int{tp.Commands: 4, tp.State: 1, tp.Events: 6, tp.Requests: 3, tp.DLQ: 3} {
		n, err := events.PartitionCount(ctx, events.Security{}, brokers, topic)
		if err != nil || n != want {
			t.Errorf("%s: %d partitions (%v), want %d", topic, n, err, want)
		}
	}
	cfg.CommandPartitions = 8
	if _, err := events.Bootstrap(ctx, brokers, cfg); !errors.Is(err, events.ErrTopicMismatch) {
		t.Errorf("bootstrap with another partition count = %v, want ErrTopicMismatch", err)
	}
	bad := events.DefaultTopicsConfig()
	bad.Prefix = ""
	if _, err := events.Bootstrap(ctx, brokers, bad); err == nil {
		t.Error("bootstrap accepted an empty prefix")
	}
}

// TestEveryTypeRoundTrips publishes each example message on the real broker
// and reads it back through the loop and decoder its receiver uses.
func TestEveryTypeRoundTrips(t *testing.T) {
	brokers := servers.RequireKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	coord, operator := newSigner(t, "coord-1"), newSigner(t, "alice")

	sent := map[string]schema.Message{} // ce_id -> message
	var recs []kafka.Message
	for _, s := range schema.Specs() {
		msg := example(t, s.Type)
		signer := map[schema.Class]*events.Signer{schema.ClassCommand: coord, schema.ClassRequest: operator}[s.Class]
		rec := encode(t, encoder(tp, signer), msg)
		id, _ := headerValue(rec, events.HeaderID)
		sent[id] = msg
		recs = append(recs, rec)
	}
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}

	got := newCollector()
	vcfg := events.DefaultCommandVerifierConfig(node)
	vcfg.Now = clock
	cv, err := events.NewCommandVerifier(vcfg, keyringOf(t, coord), events.NewReplay())
	if err != nil {
		t.Fatal(err)
	}
	partitionConsumer(t, brokers, tp, events.Partition([]byte(node), 4), &memOffsets{next: kafka.FirstOffset}, cv, got.handle, m, pub)
	groupConsumer(t, brokers, tp.Requests, tp.DLQ, requestVerifier(t, operator), got.handle, m, pub)
	groupConsumer(t, brokers, tp.Events, tp.DLQ, events.Validator{Class: schema.ClassEvent}, got.handle, m, pub)
	groupConsumer(t, brokers, tp.State, tp.DLQ, events.Validator{Class: schema.ClassState}, got.handle, m, pub)

	waitFor(t, 60*time.Second, "every type back", func() bool { return got.len() == len(sent) })
	for id, want := range sent {
		m, _ := got.get(id)
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s %s came back as %#v, sent %#v", want.MessageType(), id, m, want)
		}
	}
	if n := counter(t, reg, "regshift_events_dead_letters_total", nil); n != 0 {
		t.Errorf("%v dead letters, want none", n)
	}
	if n := counter(t, reg, "regshift_events_published_total", map[string]string{"outcome": "ok"}); n != float64(len(sent)) {
		t.Errorf("%v records counted as published, want %d", n, len(sent))
	}
	if n := counter(t, reg, "regshift_events_consumed_total", map[string]string{"outcome": "handled"}); n != float64(len(sent)) {
		t.Errorf("%v records counted as handled, want %d", n, len(sent))
	}
}

func headerValue(rec kafka.Message, key string) (string, bool) {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// dlqRecords reads every record of the dead-letter topic's partitions.
func dlqRecords(t testing.TB, brokers []string, topic string, want int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := events.PartitionCount(ctx, events.Security{}, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	for p := range n {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		last := offs.Topics[topic][0].LastOffset
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for range last {
			rec, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
		_ = r.Close()
	}
	if len(out) != want {
		t.Fatalf("dead-letter topic has %d records, want %d", len(out), want)
	}
	return out
}

// TestPoisonRecordIsDeadLettered puts a bad record between two good ones
// on one partition: the bad one goes to the DLQ with its reason and the
// source's coordinates, and both good ones are handled.
func TestPoisonRecordIsDeadLettered(t *testing.T) {
	brokers := servers.RequireKafka(t)
	coord, operator, mallory := newSigner(t, "coord-1"), newSigner(t, "alice"), newSigner(t, "mallory")
	for _, tc := range []struct {
		name   string
		loop   string // group | partition
		good   func(i int) schema.Message
		signer *events.Signer
		poison func(tp events.Topics, good kafka.Message) kafka.Message
		reason events.Reason
	}{
		{name: "request not JSON", loop: "group", signer: operator, reason: events.ReasonInvalidBody,
			good: func(i int) schema.Message {
				p := example(t, schema.TypePause).(*schema.Pause)
				p.RequestID = fmt.Sprintf("req-%d", i)
				return p
			},
			poison: func(tp events.Topics, good kafka.Message) kafka.Message {
				good.Value = []byte("{not json")
				return setHeader(setHeader(good, events.HeaderID, "req-poison"), events.HeaderSignature,
					base64Sig(operator.Sign(schema.TypePause, good.Value)))
			}},
		{name: "request without ce_type", loop: "group", signer: operator, reason: events.ReasonMissingAttribute,
			good: func(i int) schema.Message {
				p := example(t, schema.TypeResume).(*schema.Resume)
				p.RequestID = fmt.Sprintf("req-%d", i)
				return p
			},
			poison: func(tp events.Topics, good kafka.Message) kafka.Message { return dropHeader(good, events.HeaderType) }},
		{name: "command forged", loop: "partition", signer: coord, reason: events.ReasonUnknownKey,
			good: func(i int) schema.Message {
				c := example(t, schema.TypeActivate).(*schema.Activate)
				c.CommandID = fmt.Sprintf("cmd-%d", i)
				return c
			},
			poison: func(tp events.Topics, good kafka.Message) kafka.Message {
				c := example(t, schema.TypeUninstall).(*schema.Uninstall)
				c.CommandID = "cmd-poison"
				return encode(t, encoder(tp, mallory), c)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := bootstrap(t, brokers, nil)
			m, reg := testMetrics(t)
			pub := producer(t, brokers, m)
			enc := encoder(tp, tc.signer)
			first, second := encode(t, enc, tc.good(1)), encode(t, enc, tc.good(2))
			poison := tc.poison(tp, encode(t, enc, tc.good(3)))
			if err := pub.Publish(context.Background(), first, poison, second); err != nil {
				t.Fatal(err)
			}
			got := newCollector()
			topic := first.Topic
			if tc.loop == "group" {
				groupConsumer(t, brokers, topic, tp.DLQ, requestVerifier(t, operator), got.handle, m, pub)
			} else {
				vcfg := events.DefaultCommandVerifierConfig(node)
				vcfg.Now = clock
				cv, err := events.NewCommandVerifier(vcfg, keyringOf(t, coord), events.NewReplay())
				if err != nil {
					t.Fatal(err)
				}
				partitionConsumer(t, brokers, tp, events.Partition([]byte(node), 4), &memOffsets{next: kafka.FirstOffset}, cv, got.handle, m, pub)
			}
			waitFor(t, 60*time.Second, "both good records", func() bool { return got.len() == 2 })
			waitFor(t, 10*time.Second, "the dead letter counted", func() bool {
				return counter(t, reg, "regshift_events_dead_letters_total", map[string]string{"reason": string(tc.reason)}) == 1
			})
			got.mu.Lock()
			order := append([]string(nil), got.order...)
			got.mu.Unlock()
			id1, _ := headerValue(first, events.HeaderID)
			id2, _ := headerValue(second, events.HeaderID)
			if !reflect.DeepEqual(order, []string{id1, id2}) {
				t.Errorf("handled %v, want [%s %s]", order, id1, id2)
			}
			dl := dlqRecords(t, brokers, tp.DLQ, 1)[0]
			wantHeaders := map[string]string{
				events.HeaderDLQReason: string(tc.reason), events.HeaderDLQTopic: topic,
				events.HeaderDLQOffset: "1", events.HeaderDLQPartition: strconv.Itoa(events.Partition(first.Key, partitions(t, brokers, topic))),
			}
			for k, want := range wantHeaders {
				if v, _ := headerValue(dl, k); v != want {
					t.Errorf("dead letter header %s = %q, want %q", k, v, want)
				}
			}
			if string(dl.Value) != string(poison.Value) || string(dl.Key) != string(poison.Key) {
				t.Errorf("dead letter %q/%q, want the poison record %q/%q", dl.Key, dl.Value, poison.Key, poison.Value)
			}
			if e, _ := headerValue(dl, events.HeaderDLQError); e == "" {
				t.Error("dead letter without an error text")
			}
		})
	}
}

func partitions(t testing.TB, brokers []string, topic string) int {
	n, err := events.PartitionCount(context.Background(), events.Security{}, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHandlerErrors: a retriable handler error retries the same record
// until it succeeds; any other error dead-letters the record as
// handler-failed; a handler rejection dead-letters it with its reason. The
// records after each are handled in order, once each.
func TestHandlerErrors(t *testing.T) { eachBroker(t, testHandlerErrors) }

func testHandlerErrors(t *testing.T, brokers []string) {
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	enc := encoder(tp, nil)
	var recs []kafka.Message
	for i := range 4 {
		a := example(t, schema.TypeHealth).(*schema.Health)
		a.ObservedAt = now.Add(time.Duration(i) * time.Second)
		recs = append(recs, encode(t, enc, a))
	}
	if err := pub.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := map[int]int{} // second of observed_at -> calls
	var handled []int
	h := func(_ context.Context, d events.Delivery) error {
		i := d.Message.(*schema.Health).ObservedAt.Second()
		mu.Lock()
		defer mu.Unlock()
		attempts[i]++
		switch {
		case i == 0 && attempts[i] < 3:
			return fmt.Errorf("registry busy: %w", kafka.RequestTimedOut) // retriable
		case i == 1:
			return errors.New("cannot apply")
		case i == 2:
			return &events.RejectError{Reason: events.ReasonStaleEpoch, Err: errors.New("old leader")}
		}
		handled = append(handled, i)
		return nil
	}
	groupConsumer(t, brokers, tp.Events, tp.DLQ, events.Validator{Class: schema.ClassEvent}, h, m, pub)
	waitFor(t, 60*time.Second, "the last record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 2
	})
	mu.Lock()
	if !reflect.DeepEqual(handled, []int{0, 3}) || attempts[0] != 3 || attempts[1] != 1 || attempts[2] != 1 {
		t.Errorf("handled %v after attempts %v; want [0 3] after 3, 1, 1", handled, attempts)
	}
	mu.Unlock()
	awaitDeadLetters(t, reg, 2) // published once the batch is handled
	reasons := map[string]bool{}
	for _, dl := range dlqRecords(t, brokers, tp.DLQ, 2) {
		r, _ := headerValue(dl, events.HeaderDLQReason)
		reasons[r] = true
	}
	if !reasons[string(events.ReasonHandlerFailed)] || !reasons[string(events.ReasonStaleEpoch)] {
		t.Errorf("dead-letter reasons %v, want handler-failed and stale-epoch", reasons)
	}
	if n := counter(t, reg, "regshift_events_consumer_errors_total", map[string]string{"op": "handle"}); n != 2 {
		t.Errorf("%v handle retries counted, want 2", n)
	}
}

type failingOffsets struct{ memOffsets }

var errDiskFull = errors.New("disk full")

func (*failingOffsets) Save(context.Context, int64) error { return errDiskFull }

// TestPartitionConsumerStopsWhenItCannotKeepItsOffset: an agent that cannot
// record its position must not go on applying commands it would apply
// again after a restart; Run returns the store's error.
func TestPartitionConsumerStopsWhenItCannotKeepItsOffset(t *testing.T) {
	brokers := servers.RequireKafka(t)
	tp := bootstrap(t, brokers, nil)
	m, _ := testMetrics(t)
	pub := producer(t, brokers, m)
	coord := newSigner(t, "coord-1")
	if err := pub.Publish(context.Background(), encode(t, encoder(tp, coord), example(t, schema.TypeResync))); err != nil {
		t.Fatal(err)
	}
	vcfg := events.DefaultCommandVerifierConfig(node)
	vcfg.Now = clock
	cv, err := events.NewCommandVerifier(vcfg, keyringOf(t, coord), events.NewReplay())
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	c, err := events.NewPartitionConsumer(events.DefaultConsumerConfig(brokers, tp.Commands, tp.DLQ), events.Partition([]byte(node), 4),
		&failingOffsets{memOffsets{next: kafka.FirstOffset}}, cv, func(context.Context, events.Delivery) error {
			handled <- struct{}{}
			return nil
		}, pub, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Run(ctx); !errors.Is(err, errDiskFull) {
		t.Fatalf("Run = %v, want the offset store's error", err)
	}
	select {
	case <-handled:
	default:
		t.Fatal("Run returned before handling the record")
	}
}
