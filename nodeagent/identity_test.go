package nodeagent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// TestAgentNeverAnswersAnUnverifiedCommand: an agent on each broker
// (registries in memory) is sent, for its own command id
// ro-1:p1:activate, a command signed by another key under the
// coordinator's key id, an unsigned one and one signed by an unknown key.
// None of them is answered — no ack of that id is published, so a forgery
// never becomes this node's signed `rejected` — and each is dead-lettered
// with its reason. A correctly signed but expired command is answered
// `rejected` (expired), and a valid one `done`; every event the agent
// publishes is signed by its own node key.
func TestAgentNeverAnswersAnUnverifiedCommand(t *testing.T) {
	itest.EachBroker(t, testAgentNeverAnswersAnUnverifiedCommand)
}

func testAgentNeverAnswersAnUnverifiedCommand(t *testing.T, brokers []string) {
	const node, forgedID = "p1", "ro-1:p1:activate"
	ctx := t.Context()
	dir := t.TempDir()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.CommandPartitions = fmt.Sprintf("nodeid.%d.", time.Now().UnixNano()), 4
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	coordDir, identityDir := filepath.Join(dir, "coordinators"), filepath.Join(dir, "identity")
	for _, d := range []string{coordDir, identityDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	coord := itest.KeyPair(t, coordDir, "coordinator")
	self, keyFile := itest.KeyPair(t, identityDir, node), filepath.Join(identityDir, node+events.PrivateKeyExt)
	forger := itest.KeyPair(t, t.TempDir(), "coordinator")
	stranger := itest.KeyPair(t, t.TempDir(), "mallory")

	cfg := nodeagent.DefaultConfig()
	cfg.Node, cfg.Role, cfg.StateDir = node, nodeagent.RoleProvider, filepath.Join(dir, "state")
	cfg.Start.Address = "zk:2181"
	cfg.Services = []nodeagent.Service{{Name: "orders", ID: "orders-p1", Address: "127.0.0.1", Port: 8080,
		Check: nodeagent.Check{Interval: 10 * time.Second, Timeout: time.Second}}}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, tcfg.Prefix
	cfg.Trust.KeysDir, cfg.Identity.SigningKey = coordDir, keyFile
	cfg.HealthInterval = 200 * time.Millisecond
	stores := map[string]*memory.Store{}
	open := func(_ context.Context, spec nodeagent.InterfaceSpec) (registries.Registry, error) {
		if stores[spec.Settings.Address] == nil {
			stores[spec.Settings.Address] = memory.NewStore()
		}
		return memory.New(stores[spec.Settings.Address], nil), nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = itest.TestLogger(t)
	}
	runAgent(ctx, t, cfg, nodeagent.Deps{Open: open, Listener: lis, Registry: prometheus.NewRegistry()}, log)
	prod := testProducer(t, brokers, log)
	now := time.Now().UTC().Truncate(time.Second)
	header := func(id string) schema.CommandHeader {
		return schema.CommandHeader{NodeID: node, CommandID: id, RolloutID: "ro-1", Epoch: 1, IssuedAt: now,
			ExpiresAt: now.Add(5 * time.Minute), PackageDigest: "sha256:" + strings.Repeat("0", 64)}
	}
	expired := header("ro-1:p1:expired")
	expired.IssuedAt, expired.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour)
	for _, c := range []struct {
		s   *events.Signer
		cmd schema.Command
	}{
		{forger, &schema.Activate{CommandHeader: header(forgedID), Interface: "consul"}},
		{nil, &schema.Activate{CommandHeader: header(forgedID), Interface: "consul"}},
		{stranger, &schema.Activate{CommandHeader: header(forgedID), Interface: "consul"}},
		{coord, &schema.Activate{CommandHeader: expired, Interface: "consul"}},
		{coord, &schema.Resync{CommandHeader: header("ro-1:p1:resync")}},
	} {
		rec, err := (&events.Encoder{Topics: topics, Source: "test", Signer: c.s}).Encode(c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.Publish(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}

	// Every event the agent publishes verifies under its node key alone.
	nodeKeys := events.NewKeyring()
	if err := nodeKeys.Add(node, self.Public()); err != nil {
		t.Fatal(err)
	}
	verifier, err := events.NewEventVerifier(events.EventVerifierConfig{}, nodeKeys)
	if err != nil {
		t.Fatal(err)
	}
	acks := map[string][]schema.Ack{}
	read := partitionReader(t, brokers, topics.Events, node)
	for len(acks["ro-1:p1:resync"]) == 0 { // commands of a node are handled in order: the forged ones came first
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		rec, err := read.FetchMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for the ack of the valid command: %v (acks so far %v)", err, acks)
		}
		d, err := verifier.Decode(rec)
		if err != nil {
			t.Fatalf("the agent published an event its node key does not verify: %v", err)
		}
		if ack, ok := d.Message.(*schema.Ack); ok {
			acks[ack.CommandID] = append(acks[ack.CommandID], *ack)
		}
	}
	if got := acks[forgedID]; len(got) > 0 {
		t.Errorf("the agent answered unverified commands for %s: %+v", forgedID, got)
	}
	if got := acks["ro-1:p1:expired"]; len(got) != 1 || got[0].Outcome != schema.AckRejected || !strings.HasPrefix(got[0].Reason, string(events.ReasonExpired)) {
		t.Errorf("acks of the expired command %+v, want one rejected %s", got, events.ReasonExpired)
	}
	if got := acks["ro-1:p1:resync"]; got[0].Outcome != schema.AckDone || got[0].RolloutID != "ro-1" || got[0].Epoch != 1 {
		t.Errorf("ack of the valid command %+v", got[0])
	}
	reasons := map[string]int{}
	for _, dl := range readAll(t, brokers, topics.DLQ, 4) {
		for _, h := range dl.Headers {
			if h.Key == events.HeaderDLQReason {
				reasons[string(h.Value)]++
			}
		}
	}
	want := map[string]int{string(events.ReasonBadSignature): 1, string(events.ReasonUnsigned): 1, string(events.ReasonUnknownKey): 1,
		string(events.ReasonExpired): 1}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead letters by reason %v, want %v", reasons, want)
	}
}

func partitionReader(t *testing.T, brokers []string, topic, key string) *kafka.Reader {
	t.Helper()
	n, err := events.PartitionCount(t.Context(), events.Security{}, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: events.Partition([]byte(key), n),
		MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// readAll reads want records from every partition of topic, failing after a minute.
func readAll(t *testing.T, brokers []string, topic string, want int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: "read-" + topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for len(out) < want {
		rec, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("%s: %d of %d records: %v", topic, len(out), want, err)
		}
		out = append(out, rec)
	}
	return out
}

// runAgent runs an agent with cfg and deps until the test ends.
func runAgent(ctx context.Context, t *testing.T, cfg nodeagent.Config, deps nodeagent.Deps, log *slog.Logger) {
	t.Helper()
	a, err := nodeagent.NewAgent(cfg, deps, log)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
}

// testProducer is a producer to brokers, closed when the test ends.
func testProducer(t *testing.T, brokers []string, log *slog.Logger) *events.Producer {
	t.Helper()
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), log, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	return prod
}
