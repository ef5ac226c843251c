package events_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestStateLogTypes: a log told which types to read visits only those and
// passes the rest over unread; without Types it visits everything.
func TestStateLogTypes(t *testing.T) {
	_, brokers := embeddedKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := events.DefaultTopicsConfig()
	cfg.Prefix = "statelog."
	topics, err := events.Bootstrap(ctx, brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), slog.New(slog.DiscardHandler), m)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	enc := &events.Encoder{Topics: topics, Source: "test"}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	node := &schema.NodeRecord{RolloutID: "ro-1", Index: 0, ID: "p1", Roles: []string{schema.RoleProvider}}
	if _, err := prod.Send(ctx, enc, node, &schema.EpochRecord{Epoch: 7, Leader: "c", AcquiredAt: now}, node); err != nil {
		t.Fatal(err)
	}
	count := func(types ...string) map[string]int {
		seen := map[string]int{}
		l := events.StateLog{Brokers: brokers, Topic: topics.State, Decoder: events.Validator{Class: schema.ClassState}, Types: types}
		if _, err := l.Replay(ctx, func(_ int64, d events.Delivery, err error) {
			if err != nil {
				t.Errorf("record: %v", err)
				return
			}
			seen[d.Message.MessageType()]++
		}); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if got := count(schema.TypeEpochRecord); len(got) != 1 || got[schema.TypeEpochRecord] != 1 {
		t.Errorf("with Types: visited %v, want the epoch record alone", got)
	}
	if got := count(); got[schema.TypeNodeRecord] != 2 || got[schema.TypeEpochRecord] != 1 {
		t.Errorf("without Types: visited %v, want all three", got)
	}
}

// TestStateLogPassesTombstonesOver: a key deleted with Producer.Delete is
// gone from the log once it is compacted, and until then replay and follow
// pass its tombstone over without calling it unreadable.
func TestStateLogPassesTombstonesOver(t *testing.T) {
	cluster, brokers := embeddedKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics := bootstrap(t, brokers, nil)
	prod := producer(t, brokers, mustMetrics(t))
	enc := &events.Encoder{Topics: topics, Source: "test"}
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	seen := func(id string) *schema.SeenRequest {
		return &schema.SeenRequest{RequestID: id, RolloutID: "ro-1", Kind: schema.RequestPause, RequestedBy: "alice", RequestedAt: at, ExpiresAt: at.Add(time.Minute)}
	}
	if _, err := prod.Send(ctx, enc, seen("req-1"), seen("req-2")); err != nil {
		t.Fatal(err)
	}
	if err := prod.Delete(ctx, topics.State, schema.SeenRequestKey("req-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Send(ctx, enc, &schema.EpochRecord{Epoch: 1, Leader: "c", AcquiredAt: at}); err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		var got []string
		l := events.StateLog{Brokers: brokers, Topic: topics.State, Decoder: events.Validator{Class: schema.ClassState}}
		if _, err := l.Replay(ctx, func(_ int64, d events.Delivery, err error) {
			if err != nil {
				t.Errorf("replay visited an unreadable record: %v", err)
				return
			}
			got = append(got, d.Message.PartitionKey())
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := strings.Join(read(), " "); got != "/request/req-1 /request/req-2 epoch" {
		t.Errorf("before compaction: %s", got)
	}
	cluster.Compact()
	if got := strings.Join(read(), " "); got != "/request/req-2 epoch" {
		t.Errorf("after compaction: %s, want req-1 gone", got)
	}
}

func mustMetrics(t testing.TB) *events.Metrics {
	m, _ := testMetrics(t)
	return m
}
