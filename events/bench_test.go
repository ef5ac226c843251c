package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

func msgsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEncodeSign: schema check, JSON, envelope and Ed25519 signature
// of one Install command.
func BenchmarkEncodeSign(b *testing.B) {
	enc := encoder(events.NewTopics("bench."), newSigner(b, "coord-1"))
	cmd := example(b, schema.TypeInstall)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(cmd); err != nil {
			b.Fatal(err)
		}
	}
	msgsPerSecond(b)
}

// BenchmarkVerifyDecode: envelope, key, signature, schema validation,
// decode and the replay checks of one Install command, as an agent does.
func BenchmarkVerifyDecode(b *testing.B) {
	s := newSigner(b, "coord-1")
	rec := encode(b, encoder(events.NewTopics("bench."), s), example(b, schema.TypeInstall))
	cfg := events.DefaultCommandVerifierConfig(node)
	cfg.Now = clock
	v, err := events.NewCommandVerifier(cfg, keyringOf(b, s), events.NewReplay())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
	msgsPerSecond(b)
}

// BenchmarkRoundTrip measures publish -> consume on the real broker, one
// record at a time, interleaving two paths with the same Writer settings
// (events.ProducerConfig.NewWriter) and reader settings:
//
//   - raw: a kafka-go Writer and a partition Reader moving pre-built bytes;
//   - signed: encode + sign a command, Producer.Publish, and the agent's
//     PartitionConsumer loop verifying and decoding it into its handler.
//
// It reports each path's mean round trip and their ratio (signed / raw).
func BenchmarkRoundTrip(b *testing.B) {
	brokers := servers.RequireKafka(b)
	ctx := context.Background()
	cfg := events.DefaultProducerConfig(brokers)
	part := events.Partition([]byte(node), 4)
	coord := newSigner(b, "coord-1")
	m, _ := testMetrics(b)

	// raw
	rawTopics := bootstrap(b, brokers, nil)
	w := cfg.NewWriter()
	defer w.Close()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: rawTopics.Commands, Partition: part,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, ReadLagInterval: -1})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil { // a fresh topic: LastOffset would resolve lazily, after the first write
		b.Fatal(err)
	}
	rawRec := encode(b, encoder(rawTopics, coord), example(b, schema.TypeActivate))

	// signed
	tp := bootstrap(b, brokers, nil)
	pub := producer(b, brokers, m)
	enc := &events.Encoder{Topics: tp, Source: "regshift/bench", Signer: coord}
	replay := events.NewReplay()
	v, err := events.NewCommandVerifier(events.DefaultCommandVerifierConfig(node), keyringOf(b, coord), replay)
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan string, 1)
	partitionConsumer(b, brokers, tp, part, &memOffsets{next: kafka.FirstOffset}, v,
		func(_ context.Context, d events.Delivery) error {
			got <- d.Message.(schema.Command).Header().CommandID
			return nil
		}, m, pub)
	cmd := example(b, schema.TypeActivate).(*schema.Activate)

	rawTrip := func() time.Duration {
		start := time.Now()
		if err := w.WriteMessages(ctx, rawRec); err != nil {
			b.Fatal(err)
		}
		if _, err := r.FetchMessage(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	i := 0
	signedTrip := func() time.Duration {
		i++
		start := time.Now()
		cmd.CommandID = fmt.Sprintf("cmd-b%d", i)
		cmd.IssuedAt, cmd.ExpiresAt = start, start.Add(time.Minute)
		rec, err := enc.Encode(cmd)
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish(ctx, rec); err != nil {
			b.Fatal(err)
		}
		select {
		case id := <-got:
			if id != cmd.CommandID {
				b.Fatalf("consumed %s, published %s", id, cmd.CommandID)
			}
		case <-time.After(30 * time.Second):
			b.Fatal("signed command not consumed within 30s")
		}
		return time.Since(start)
	}
	// Warm both paths (connections, metadata, the consumer's first fetch).
	for range 20 {
		rawTrip()
		signedTrip()
	}
	var raw, signed time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		raw += rawTrip()
		signed += signedTrip()
	}
	b.StopTimer()
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N), "raw-µs/trip")
	b.ReportMetric(float64(signed.Microseconds())/float64(b.N), "signed-µs/trip")
	b.ReportMetric(float64(signed)/float64(raw), "signed/raw")
}

// BenchmarkDecodeHealth is the coordinator's cost per health report read
// from the events topic (Validator.Decode), and its parts: the envelope
// headers, the JSON Schema validation and the typed JSON decoding.
func BenchmarkDecodeHealth(b *testing.B) {
	rec := encode(b, encoder(events.NewTopics("bench."), nil), example(b, schema.TypeHealth))
	for _, bc := range []struct {
		name string
		f    func() error
	}{
		{"decode", func() error {
			_, err := events.Validator{Class: schema.ClassEvent}.Decode(rec)
			return err
		}},
		{"envelope", func() error {
			_, err := events.ParseEnvelope(rec)
			return err
		}},
		{"validate", func() error { return schema.Validate(schema.TypeHealth, rec.Value) }},
		{"unmarshal", func() error {
			var h schema.Health
			d := json.NewDecoder(bytes.NewReader(rec.Value))
			d.DisallowUnknownFields()
			return d.Decode(&h)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.f(); err != nil {
					b.Fatal(err)
				}
			}
			msgsPerSecond(b)
		})
	}
}

// BenchmarkIngest is the coordinator's intake: 200,000 health reports of
// 2,000 nodes, keyed by node over the six partitions of the events topic,
// read by a group batch consumer (default settings) whose handler only
// counts them. It reports events/s from the first batch to the last, on
// the embedded broker and on the real one, with the Validator ("decoded"),
// also committing offsets in the background once a second as the
// coordinator does ("decoded-commit-every-1s"), with the coordinator's
// EventVerifier on reports and acks (3:1) each signed by its node's key
// ("verified": what a coordinator does) and with a decoder that does
// nothing ("transport": the floor the broker, kafka-go and the loop set).
// Each iteration reads the whole topic with a new group; -benchtime=1x is
// enough.
func BenchmarkIngest(b *testing.B) {
	for _, broker := range []struct {
		name    string
		brokers func(b *testing.B) []string
	}{
		{"kfake", func(b *testing.B) []string { _, brokers := embeddedKafka(b); return brokers }},
		{"kafka", func(b *testing.B) []string { return servers.RequireKafka(b) }},
	} {
		b.Run(broker.name, func(b *testing.B) {
			brokers := broker.brokers(b)
			unsigned := func(b *testing.B, tp events.Topics, nodes int) ([]kafka.Message, events.Decoder) {
				return healthEvents(b, tp, nodes, nodes), events.Validator{Class: schema.ClassEvent}
			}
			b.Run("decoded", func(b *testing.B) { benchIngestWith(b, brokers, unsigned, 0) })
			b.Run("decoded-commit-every-1s", func(b *testing.B) { benchIngestWith(b, brokers, unsigned, time.Second) })
			b.Run("verified", func(b *testing.B) {
				benchIngestWith(b, brokers, func(b *testing.B, tp events.Topics, nodes int) ([]kafka.Message, events.Decoder) {
					recs, keys := signedEvents(b, tp, nodes, nodes)
					return recs, eventVerifier(b, keys, false)
				}, 0)
			})
			b.Run("transport", func(b *testing.B) {
				benchIngestWith(b, brokers, func(b *testing.B, tp events.Topics, nodes int) ([]kafka.Message, events.Decoder) {
					return healthEvents(b, tp, nodes, nodes), passDecoder{}
				}, 0)
			})
		})
	}
}

// passDecoder takes every record as it is.
type passDecoder struct{}

func (passDecoder) Decode(rec kafka.Message) (events.Delivery, error) {
	return events.Delivery{Record: rec}, nil
}

// benchIngestWith publishes total/nodes times the round of one event a
// node that round makes, and reads them with its decoder, the consumer
// committing every commitEvery (0: after each batch).
func benchIngestWith(b *testing.B, brokers []string, round func(b *testing.B, tp events.Topics, nodes int) ([]kafka.Message, events.Decoder),
	commitEvery time.Duration) {
	const nodes, total = 2_000, 200_000
	tp := bootstrap(b, brokers, nil)
	m, _ := testMetrics(b)
	pcfg := events.DefaultProducerConfig(brokers)
	pcfg.BatchSize = 1000
	pub, err := events.NewProducer(pcfg, testLogger(b), m)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	recs, dec := round(b, tp, nodes) // one event a node, sent total/nodes times
	for range total / nodes {
		if err := pub.Publish(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		var seen atomic.Int64
		var first, last atomic.Int64 // unix nanoseconds
		done := make(chan struct{})
		cfg := events.DefaultConsumerConfig(brokers, tp.Events, tp.DLQ)
		cfg.CommitEvery = commitEvery
		c, err := events.NewGroupBatchConsumer(cfg, fmt.Sprintf("bench-%d", i), dec,
			func(_ context.Context, ds []events.Delivery) []error {
				now := time.Now().UnixNano()
				first.CompareAndSwap(0, now)
				last.Store(now)
				if seen.Add(int64(len(ds))) == total {
					close(done)
				}
				return nil
			}, pub, slog.New(slog.DiscardHandler), m)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- c.Run(ctx) }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatalf("read %d of %d records in 5 minutes", seen.Load(), total)
		}
		cancel()
		if err := <-stopped; err != nil {
			b.Fatal(err)
		}
		elapsed += time.Duration(last.Load() - first.Load())
	}
	b.ReportMetric(float64(total*b.N)/elapsed.Seconds(), "events/s")
}
