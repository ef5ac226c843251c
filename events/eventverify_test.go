package events_test

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// nodeKeys are the node keys of the event tests: node-17 (the examples'
// node) and node-18 enrolled, node-20 enrolled then revoked, node-19 and
// the coordinator never enrolled.
type nodeKeys struct {
	n17, n18, n19, n20, coord *events.Signer
	keys                      *events.Keyring
}

func newNodeKeys(t testing.TB) *nodeKeys {
	k := &nodeKeys{n17: newSigner(t, node), n18: newSigner(t, "node-18"), n19: newSigner(t, "node-19"), n20: newSigner(t, "node-20"),
		coord: newSigner(t, "coord-1")}
	k.keys = keyringOf(t, k.n17, k.n18, k.n20)
	k.keys.Revoke("node-20")
	return k
}

func eventVerifier(t testing.TB, keys *events.Keyring, allowUnsigned bool) *events.EventVerifier {
	t.Helper()
	v, err := events.NewEventVerifier(events.EventVerifierConfig{AllowUnsigned: allowUnsigned}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eventOf is the example event of typ, spoken for node.
func eventOf(t testing.TB, typ, node string) schema.Message {
	m := example(t, typ)
	switch m := m.(type) {
	case *schema.Ack:
		m.NodeID = node
	case *schema.Health:
		m.NodeID = node
	case *schema.Hello:
		m.NodeID = node
	}
	return m
}

// rekey puts rec on the partition of node: record key and partitionkey.
func rekey(rec kafka.Message, node string) kafka.Message {
	rec.Key = []byte(node)
	return setHeader(rec, events.HeaderPartitionKey, node)
}

func TestEventVerifierReasons(t *testing.T) {
	k := newNodeKeys(t)
	for _, typ := range []string{schema.TypeAck, schema.TypeHealth, schema.TypeHello} {
		signed := func(s *events.Signer, about string) kafka.Message {
			return encode(t, encoder(topics, s), eventOf(t, typ, about))
		}
		for _, tc := range []struct {
			name          string
			allowUnsigned bool
			rec           func() kafka.Message
			want          events.Reason // "" = accepted
		}{
			{name: "signed by its node", rec: func() kafka.Message { return signed(k.n17, node) }},
			{name: "signed by its node, unsigned allowed", allowUnsigned: true, rec: func() kafka.Message { return signed(k.n17, node) }},
			{name: "unsigned", want: events.ReasonUnsigned, rec: func() kafka.Message { return signed(nil, node) }},
			{name: "unsigned, allowed", allowUnsigned: true, rec: func() kafka.Message { return signed(nil, node) }},
			{name: "signed by another enrolled node", want: events.ReasonWrongSigner, rec: func() kafka.Message { return signed(k.n18, node) }},
			{name: "signed by another enrolled node, unsigned allowed", allowUnsigned: true, want: events.ReasonWrongSigner,
				rec: func() kafka.Message { return signed(k.n18, node) }},
			{name: "signed by the coordinator", want: events.ReasonWrongSigner, rec: func() kafka.Message { return signed(k.coord, node) }},
			{name: "another node's key under this node's key id", want: events.ReasonBadSignature,
				rec: func() kafka.Message { return setHeader(signed(k.n18, node), events.HeaderKeyID, node) }},
			{name: "another node's key under this node's key id, unsigned allowed", allowUnsigned: true, want: events.ReasonBadSignature,
				rec: func() kafka.Message { return setHeader(signed(k.n18, node), events.HeaderKeyID, node) }},
			{name: "a node not enrolled", want: events.ReasonUnknownKey, rec: func() kafka.Message { return signed(k.n19, "node-19") }},
			{name: "a revoked node", want: events.ReasonRevokedKey, rec: func() kafka.Message { return signed(k.n20, "node-20") }},
			{name: "body changed after signing", want: events.ReasonBadSignature, rec: func() kafka.Message {
				rec := signed(k.n17, node)
				rec.Value = append([]byte(" "), rec.Value...)
				return rec
			}},
			{name: "signed as another event type", want: events.ReasonBadSignature, rec: func() kafka.Message {
				rec := signed(k.n17, node)
				return resign(rec, k.n17, otherEventType(typ), rec.Value)
			}},
			{name: "a node speaking for another in the body", want: events.ReasonHeaderMismatch,
				rec: func() kafka.Message { return rekey(signed(k.n18, node), "node-18") }},
			{name: "record key differs from partitionkey", want: events.ReasonHeaderMismatch, rec: func() kafka.Message {
				rec := signed(k.n17, node)
				rec.Key = []byte("node-18")
				return rec
			}},
			{name: "a command on the events topic", want: events.ReasonWrongClass,
				rec: func() kafka.Message { return encode(t, encoder(topics, k.n17), example(t, schema.TypeInstall)) }},
		} {
			t.Run(typ+"/"+tc.name, func(t *testing.T) {
				d, err := eventVerifier(t, k.keys, tc.allowUnsigned).Decode(tc.rec())
				if tc.want == "" {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					if d.Message.MessageType() != typ || d.Message.PartitionKey() != node {
						t.Fatalf("delivery %s of %s", d.Message.MessageType(), d.Message.PartitionKey())
					}
					return
				}
				if got, _ := events.ReasonOf(err); got != tc.want {
					t.Fatalf("Decode = %v, want reason %q", err, tc.want)
				}
			})
		}
	}
}

func otherEventType(typ string) string {
	if typ == schema.TypeAck {
		return schema.TypeHealth
	}
	return schema.TypeAck
}

// TestEventVerifierDeadLettersForgeries: on each broker, a node's own
// events are handled and the forged ones — unsigned, another node's key,
// another key under the node's key id — go to the dead-letter topic with
// their reason, without reaching the handler.
func TestEventVerifierDeadLettersForgeries(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		k := newNodeKeys(t)
		tp := bootstrap(t, brokers, nil)
		m, reg := testMetrics(t)
		pub := producer(t, brokers, m)
		ack := func(s *events.Signer, outcome schema.AckOutcome) kafka.Message {
			a := example(t, schema.TypeAck).(*schema.Ack)
			a.Outcome = outcome
			return encode(t, encoder(tp, s), a)
		}
		recs := []kafka.Message{
			ack(k.n17, schema.AckDone),
			ack(nil, schema.AckDone),
			ack(k.n18, schema.AckRejected),
			setHeader(ack(k.n18, schema.AckDone), events.HeaderKeyID, node),
			encode(t, encoder(tp, k.n18), eventOf(t, schema.TypeHealth, node)),
			encode(t, encoder(tp, k.n17), eventOf(t, schema.TypeHealth, node)),
		}
		if err := pub.Publish(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
		var calls batchCalls
		c, err := events.NewGroupBatchConsumer(events.DefaultConsumerConfig(brokers, tp.Events, tp.DLQ), "g-"+tp.Events,
			eventVerifier(t, k.keys, false), calls.handle, pub, testLogger(t), m)
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		part := awaitCommitted(t, brokers, tp.Events, node, int64(len(recs)))
		var handled []offsetOf
		for _, call := range calls.all() {
			handled = append(handled, call...)
		}
		if want := []offsetOf{{part, 0}, {part, 5}}; fmt.Sprint(handled) != fmt.Sprint(want) {
			t.Errorf("handled %v, want the node's own ack and health %v", handled, want)
		}
		got := deadLetterReasons(t, brokers, tp.DLQ, 4)
		want := map[string]string{"1": string(events.ReasonUnsigned), "2": string(events.ReasonWrongSigner),
			"3": string(events.ReasonBadSignature), "4": string(events.ReasonWrongSigner)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("dead letters by offset %v, want %v", got, want)
		}
		if n := counter(t, reg, "regshift_events_dead_letters_total", map[string]string{"reason": string(events.ReasonWrongSigner)}); n != 2 {
			t.Errorf("%v wrong-signer dead letters counted, want 2", n)
		}
	})
}

// signedEvents are n health reports and acks of nodes nodes, each signed
// by its node's key, and the keyring trusting those keys.
func signedEvents(b *testing.B, tp events.Topics, n, nodes int) ([]kafka.Message, *events.Keyring) {
	b.Helper()
	keys := events.NewKeyring()
	encs := make([]*events.Encoder, nodes)
	for i := range encs {
		s := newSigner(b, fmt.Sprintf("node-%d", i))
		if err := keys.Add(s.KeyID, s.Public()); err != nil {
			b.Fatal(err)
		}
		encs[i] = encoder(tp, s)
	}
	recs := make([]kafka.Message, n)
	for i := range recs {
		m := eventOf(b, schema.TypeHealth, fmt.Sprintf("node-%d", i%nodes))
		if i%4 == 3 {
			m = eventOf(b, schema.TypeAck, fmt.Sprintf("node-%d", i%nodes))
		}
		recs[i] = encode(b, encs[i%nodes], m)
	}
	return recs, keys
}

// BenchmarkVerifyEvents is what one coordinator verifies: signed health
// reports and acks (3:1) of 1,000 nodes through EventVerifier.Decode —
// envelope, key lookup, Ed25519 signature, JSON Schema, decode — on every
// core at once, as the group consumer decodes a batch (b.RunParallel,
// GOMAXPROCS goroutines). "serial" is one core, for the ratio.
//
// Besides events/s of wall time it reports the process's CPU time per
// event ("cpu-µs/event") and the cores it kept busy ("cores"): on a
// machine shared with other work the wall figures shrink, the CPU cost per
// event does not, and events/s per free core is 1e6 / cpu-µs/event.
func BenchmarkVerifyEvents(b *testing.B) {
	recs, keys := signedEvents(b, events.NewTopics("bench."), 4_000, 1_000)
	v := eventVerifier(b, keys, false)
	decode := func(i int) {
		if _, err := v.Decode(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B, start time.Time, cpu0 time.Duration) {
		wall, cpu := time.Since(start), cpuTime(b)-cpu0
		b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		start, cpu0 := time.Now(), cpuTime(b)
		i := 0
		for b.Loop() {
			decode(i)
			i++
		}
		report(b, start, cpu0)
	})
	b.Run(fmt.Sprintf("parallel-%d", runtime.GOMAXPROCS(0)), func(b *testing.B) {
		b.ReportAllocs()
		start, cpu0 := time.Now(), cpuTime(b)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				decode(i)
				i++
			}
		})
		report(b, start, cpu0)
	})
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
