package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// boundPlan moves one provider from ZooKeeper to Consul with a short soak.
const boundPlan = `
from: {name: zookeeper, kind: zookeeper, address: "127.0.0.1:2181",
  package: {url: "http://127.0.0.1:7080/packages/zookeeper.tgz", digest: "sha256:9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"}}
to: {name: consul, kind: consul, address: "127.0.0.1:8500",
  package: {url: "http://127.0.0.1:7080/packages/consul.tgz", digest: "sha256:4f8b2c1e0d9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"}}
nodes: [{node_id: p1, roles: [provider]}]
waves: {canary: 1, percentages: [100], max_in_flight: 1}
gates: {ack_timeout_seconds: 30, soak_seconds: 1, min_healthy_ratio: 1.0, min_parity: 0.99, failure_budget: 0, on_failure: switch-back}
finalize: manual
`

// TestSwitchBackWithTenThousandMissing: the new registry loses 10,000
// instances after prepare (its writes start to vanish, a registry bug, and
// the mirrors are gone). The parity gate fails with a registry detail that
// would list all 10,000; it must stay within the schema so the switch-back
// decision persists and the switch-back command goes out.
func TestSwitchBackWithTenThousandMissing(t *testing.T) {
	const missing = 10_000
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close) // after the coordinator stopped
	brokers := broker.ListenAddrs()

	ctx := t.Context()
	old, fresh := memory.NewStore(), memory.NewStore()
	provider := memory.New(old, nil)
	defer provider.Close()
	for i := range missing {
		in := registries.Instance{Service: "orders", ID: fmt.Sprintf("orders-%05d", i), Address: "10.0.0.1", Port: 9000}
		if err := provider.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var lose atomic.Bool // the new registry's writes vanish
	open := func(kind, _ string, log *slog.Logger) (registries.Registry, error) {
		if kind == "zookeeper" {
			return memory.New(old, log), nil
		}
		return losing{Registry: memory.New(fresh, log), lose: &lose}, nil
	}

	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.NodeKeysDir = brokers, t.TempDir()
	p1Key := nodeKey(t, cfg.NodeKeysDir, "p1")
	api := serveLeading(ctx, t, cfg, open)

	topics := events.NewTopics(cfg.TopicPrefix)
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), testLog(t), mustMetrics(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() }) // after the fake agent stopped
	p1 := startFakeAgent(ctx, t, brokers, topics, prod, p1Key)

	plan, err := coordinator.ParsePlan([]byte(boundPlan))
	if err != nil {
		t.Fatal(err)
	}
	createRollout(ctx, t, prod, topics, "ro-bound", plan)
	await(t, "prepared: the bridge mirrored every instance", func() error {
		var r coordinator.Rollout
		if err := getJSON(api+"/v1/rollouts/ro-bound", &r); err != nil {
			return err
		}
		if r.Phase != schema.PhaseRolling {
			return fmt.Errorf("phase %s", r.Phase)
		}
		return nil
	})

	// The registry bug: writes vanish from now on and the mirrors are gone.
	lose.Store(true)
	wipe := memory.New(fresh, nil)
	for i := range missing {
		if err := wipe.Deregister(ctx, "orders", fmt.Sprintf("orders-%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = wipe.Close()

	var (
		rec schema.RolloutRecord
		d   schema.Decision
	)
	await(t, "the switch-back decision persisted", func() error {
		var ok bool
		if rec, ok = persisted(ctx, t, brokers, topics.State, "ro-bound"); !ok {
			return fmt.Errorf("no record of ro-bound yet")
		}
		for _, x := range rec.Decisions {
			if x.Decision == schema.DecisionSwitchBack {
				d = x
				return nil
			}
		}
		return fmt.Errorf("phase %s, %d decisions, no switch-back", rec.Phase, len(rec.Decisions))
	})
	t.Logf("switch-back detail (%d bytes): %s", len(d.Detail), d.Detail)
	if d.Check != schema.CheckParity {
		t.Errorf("switch-back on check %q, want %q", d.Check, schema.CheckParity)
	}
	want := fmt.Sprintf("%d of %d missing in the new registry: orders/orders-00000, ", missing, missing)
	for what, detail := range map[string]string{"the switch-back decision": d.Detail, "the registry report": rec.Registry.Detail} {
		if !strings.Contains(detail, want) || !strings.HasSuffix(detail, " more") {
			t.Errorf("%s does not say %q and count the instances it leaves out: %q", what, want, detail)
		}
		if len(detail) > schema.MaxDetail {
			t.Errorf("%s's detail is %d bytes, over schema.MaxDetail (%d)", what, len(detail), schema.MaxDetail)
		}
	}
	await(t, "a switch-back command sent to p1", func() error {
		if !p1.received(schema.TypeSwitchBack) {
			return fmt.Errorf("commands so far: %v", p1.kinds())
		}
		return nil
	})
}

// serveLeading runs a coordinator replica with cfg (a fast tick and
// registry measurement, a fresh signing key unless cfg names one,
// unsigned requests accepted; the node keys in cfg.NodeKeysDir, which
// nodeKey makes) until ctx ends, waits for it to lead, and returns its
// API's URL. The test waits for it to stop when it ends. A clock, when
// given, is its Deps.Now.
func serveLeading(ctx context.Context, t *testing.T, cfg server.Config, open server.Opener, clock ...func() time.Time) string {
	t.Helper()
	s := newServer(t, cfg, open, clock...)
	return serve(ctx, t, s)
}

// newServer is serveLeading's replica, not yet serving.
func newServer(t *testing.T, cfg server.Config, open server.Opener, clock ...func() time.Time) *server.Server {
	t.Helper()
	if cfg.SigningKey == "" {
		cfg.SigningKey = writeKey(t, t.TempDir(), "coord-test").file
	}
	if cfg.NodeKeysDir == "" && !cfg.AcceptUnsignedEvents {
		cfg.NodeKeysDir = t.TempDir() // no agent: no event to accept
	}
	cfg.ID, cfg.AcceptUnsigned = "coord-test", true
	cfg.Tick, cfg.RegistryEvery, cfg.CommandPartitions = 50*time.Millisecond, 100*time.Millisecond, 2
	deps := server.Deps{Registry: prometheus.NewRegistry(), Open: open}
	if len(clock) > 0 {
		deps.Now = clock[0]
	}
	s, err := server.New(cfg, deps, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// key is a key pair written to a folder, and its signer.
type key struct {
	*events.Signer
	file string // the private key file
}

func writeKey(t *testing.T, dir, id string) key {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	file, _, err := events.WriteKeyPair(dir, id, priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.NewSigner(id, priv)
	if err != nil {
		t.Fatal(err)
	}
	return key{s, file}
}

// serve runs s until ctx ends, waits for it to lead, and returns its API's
// URL. The test waits for it to stop when it ends.
func serve(ctx context.Context, t *testing.T, s *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the coordinator did not stop within 30s of its context")
		}
	})
	api := "http://" + ln.Addr().String()
	await(t, "leading", func() error {
		var h server.Health
		if err := getJSON(api+"/healthz", &h); err != nil || !h.Leader {
			return fmt.Errorf("healthz %+v %v", h, err)
		}
		return nil
	})
	return api
}

// createRollout requests, unsigned, a rollout of plan named id.
func createRollout(ctx context.Context, t *testing.T, prod *events.Producer, topics events.Topics, id string, plan schema.Plan) {
	t.Helper()
	enc := &events.Encoder{Topics: topics, Source: "test"}
	rec, err := enc.Encode(&schema.CreateRollout{Plan: plan, RequestHeader: schema.RequestHeader{RequestID: "create-" + id, RolloutID: id,
		RequestedBy: "test", RequestedAt: time.Now().UTC()}})
	if err == nil {
		err = prod.Publish(ctx, rec)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// losing is a registry whose writes can be made to vanish: Register answers
// success and stores nothing.
type losing struct {
	registries.Registry
	lose *atomic.Bool
}

func (l losing) Register(ctx context.Context, in registries.Instance) error {
	if l.lose.Load() {
		return nil
	}
	return l.Registry.Register(ctx, in)
}

// persisted replays the state topic and returns the last record of rollout id.
func persisted(ctx context.Context, t *testing.T, brokers []string, topic, id string) (schema.RolloutRecord, bool) {
	t.Helper()
	var last schema.RolloutRecord
	found := false
	log := events.StateLog{Brokers: brokers, Topic: topic, Decoder: events.Validator{Class: schema.ClassState}}
	_, err := log.Replay(ctx, func(_ int64, d events.Delivery, err error) {
		if r, ok := d.Message.(*schema.RolloutRecord); err == nil && ok && r.ID == id {
			last, found = *r, true
		}
	})
	if err != nil {
		t.Logf("replay %s: %v", topic, err)
	}
	return last, found
}

// nodeKey makes node's key pair and enrols its public key in nodeKeysDir.
func nodeKey(t *testing.T, nodeKeysDir, node string) *events.Signer {
	t.Helper()
	dir := t.TempDir()
	s := itest.KeyPair(t, dir, node)
	itest.Enrol(t, dir, node, nodeKeysDir)
	return s
}

// fakeAgent answers one node's commands as an agent that carries each out
// at once, and reports the new interface healthy once it is active. Its
// events are signed with the node's key.
type fakeAgent struct {
	node string
	mu   sync.Mutex
	got  []string // message types of the commands received
}

func startFakeAgent(ctx context.Context, t *testing.T, brokers []string, topics events.Topics, prod *events.Producer, key *events.Signer) *fakeAgent {
	t.Helper()
	node := key.KeyID
	a := &fakeAgent{node: node}
	var n int
	await(t, "the commands topic", func() (err error) {
		n, err = events.PartitionCount(ctx, events.Security{}, brokers, topics.Commands)
		return err
	})
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topics.Commands,
		Partition: events.Partition([]byte(node), n), MaxWait: 100 * time.Millisecond})
	enc := &events.Encoder{Topics: topics, Source: "test/" + node, Signer: key}
	publish := func(m schema.Message) {
		rec, err := enc.Encode(m)
		if err == nil {
			err = prod.Publish(ctx, rec)
		}
		if err != nil && ctx.Err() == nil {
			t.Errorf("%s: publish %s: %v", node, m.MessageType(), err)
		}
	}
	var active atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer r.Close()
		for {
			rec, err := r.ReadMessage(ctx)
			if err != nil {
				return // ctx ended
			}
			d, err := events.Validator{Class: schema.ClassCommand}.Decode(rec)
			if err != nil {
				t.Errorf("%s: command at offset %d: %v", node, rec.Offset, err)
				continue
			}
			cmd := d.Message.(schema.Command)
			h := cmd.Header()
			if h.NodeID != node {
				continue
			}
			kind := cmd.MessageType()
			a.mu.Lock()
			a.got = append(a.got, kind)
			a.mu.Unlock()
			if kind == schema.TypeActivate {
				active.Store(true)
			}
			publish(&schema.Ack{NodeID: node, CommandID: h.CommandID, RolloutID: h.RolloutID, Epoch: h.Epoch,
				Outcome: schema.AckDone, At: time.Now().UTC()})
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if active.Load() {
				publish(&schema.Health{NodeID: node, ObservedAt: time.Now().UTC(), Interfaces: []schema.InterfaceHealth{
					{Name: "consul", State: schema.StateActive, Status: schema.HealthPassing, Resolved: 1},
					{Name: "zookeeper", State: schema.StateStandby, Status: schema.HealthPassing, Resolved: 1}}})
			}
		}
	})
	t.Cleanup(wg.Wait)
	return a
}

func (a *fakeAgent) received(typ string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.got, typ)
}

func (a *fakeAgent) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}
