package itest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/zookeeper"
	"github.com/regshift/regshift/schema"
)

// Env is one test's world on the real servers.
type Env struct {
	// ID is unique per Env; Service names services with it, since Consul is
	// shared by every test running at the time.
	ID        string
	Brokers   []string
	ZooKeeper string // host:port
	Consul    string // host:port
	Prefix    string // topic prefix, unique per Env
	BasePath  string // ZooKeeper base path, unique per Env
	Topics    events.Topics
	// Access is how each party reaches Kafka: plaintext for all on the
	// shared broker, unless NewWith was given otherwise.
	Access     Access
	KeysDir    string // the coordinator's public key, for agents to trust
	Signer     *events.Signer
	RolloutID  string
	Dir        string
	Log        *slog.Logger
	encoder    *events.Encoder
	producer   *events.Producer // as PartyAdmin: commands and raw records
	requests   *events.Producer // as PartyOperator
	collected  *collector
	registries map[string]registries.Registry // read-only clients: "zookeeper", "consul"
	// Digest is the rollout's package digest that every command header
	// names: the last package ConsulPackage built.
	Digest string

	// NodeKeysDir holds the public key of every agent's node (NodeKey makes
	// them), for a coordinator to trust.
	NodeKeysDir string
}

// New makes an Env on the shared servers: unique topics (bootstrapped), a
// coordinator key pair, a producer of signed commands and a collector of
// everything on the events topic. Everything is cleaned up with the test.
func New(t testing.TB) *Env {
	t.Helper()
	return NewWith(t, Access{})
}

// NewWith makes an Env whose parties reach Kafka as access says; ZooKeeper
// and Consul are the shared ones.
func NewWith(t testing.TB, access Access) *Env {
	t.Helper()
	if len(access.Brokers) == 0 {
		access.Brokers = servers.RequireKafka(t)
	}
	e := &Env{
		Brokers:   access.Brokers,
		Access:    access,
		ZooKeeper: servers.RequireZooKeeper(t)[0],
		Consul:    servers.RequireConsul(t),
		Dir:       t.TempDir(),
		Log:       TestLogger(t),
		RolloutID: "ro-" + unique(),
	}
	e.ID = unique()
	e.Prefix = access.Prefix
	if e.Prefix == "" {
		e.Prefix = "itest." + e.ID + "."
	}
	e.BasePath = "/regshift-itest-" + unique()
	admin := e.Security(t, PartyAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := events.DefaultTopicsConfig()
	cfg.Prefix, cfg.CommandPartitions, cfg.EventPartitions, cfg.Security = e.Prefix, 4, 2, admin
	topics, err := events.Bootstrap(ctx, e.Brokers, cfg)
	if err != nil {
		t.Fatalf("bootstrap topics: %v", err)
	}
	e.Topics = topics
	t.Cleanup(func() { deleteTopics(e.Brokers, admin, topics) })

	e.KeysDir, e.NodeKeysDir = filepath.Join(e.Dir, "keys"), filepath.Join(e.Dir, "nodes")
	for _, d := range []string{e.KeysDir, e.NodeKeysDir, filepath.Join(e.Dir, "identity")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.Signer = KeyPair(t, e.KeysDir, "coordinator-itest")
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.producer = e.Producer(t, PartyAdmin, m)
	e.requests = e.Producer(t, PartyOperator, m)
	e.encoder = &events.Encoder{Topics: topics, Source: "regshift/itest", Signer: e.Signer}
	e.collected = collect(t, e.Brokers, admin, topics.Events, e.Log)

	e.registries = map[string]registries.Registry{}
	zcfg := zookeeper.DefaultConfig(e.ZooKeeper)
	zcfg.BasePath = e.BasePath
	zr, err := zookeeper.New(zcfg, e.Log)
	if err != nil {
		t.Fatal(err)
	}
	ccfg := consul.DefaultConfig()
	ccfg.Address = e.Consul
	cr, err := consul.New(ccfg, e.Log)
	if err != nil {
		t.Fatal(err)
	}
	e.registries["zookeeper"], e.registries["consul"] = zr, cr
	t.Cleanup(func() { _ = zr.Close(); _ = cr.Close() })
	return e
}

// Service returns a service name unique to this Env: Consul has one
// catalog for every test running at the time.
func (e *Env) Service(name string) string { return name + "-" + e.ID }

// Registry is a client of the named registry ("zookeeper" or "consul") for
// the test's own use: registering other providers, reading what is there.
func (e *Env) Registry(name string) registries.Registry { return e.registries[name] }

// ConsulPackage builds an interface package for Consul at the Env's address
// and returns its file URL and digest.
func (e *Env) ConsulPackage(t testing.TB) (url, digest string) {
	t.Helper()
	defer func() { e.Digest = digest }()
	return e.Package(t, "consul", fmt.Sprintf("apiVersion: %s\nkind: %s\ninterface: consul\ntype: consul\nversion: \"1.14\"\nsettings:\n  address: %q\n  options: {checkTTL: 5s}\n",
		ifacepkg.APIVersion, ifacepkg.Kind, e.Consul))
}

// Package builds a package from a manifest's text.
func (e *Env) Package(t testing.TB, name, manifest string) (url, digest string) {
	t.Helper()
	dir, err := os.MkdirTemp(e.Dir, "pkg-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(dir, ifacepkg.ManifestName)
	if err := os.WriteFile(mf, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, digest, err := ifacepkg.Build(mf)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".tgz")
	if err := os.WriteFile(out, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + out, digest
}

// Header is a command header for node, valid for five minutes from now.
func (e *Env) Header(node, id string, epoch uint64) schema.CommandHeader {
	now := time.Now().UTC().Truncate(time.Second)
	digest := e.Digest
	if digest == "" {
		digest = "sha256:" + strings.Repeat("0", 64)
	}
	return schema.CommandHeader{NodeID: node, CommandID: id, RolloutID: e.RolloutID, Epoch: epoch,
		IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), PackageDigest: digest}
}

// Send signs and publishes commands.
func (e *Env) Send(t testing.TB, cmds ...schema.Command) {
	t.Helper()
	e.SendWith(t, e.encoder, cmds...)
}

// SendWith publishes commands through another encoder (a forger's key, an
// unsigned one).
func (e *Env) SendWith(t testing.TB, enc *events.Encoder, cmds ...schema.Command) {
	t.Helper()
	for _, c := range cmds {
		rec, err := enc.Encode(c)
		if err != nil {
			t.Fatalf("encode %s: %v", c.Header().CommandID, err)
		}
		e.SendRecord(t, rec)
	}
}

// Request publishes an operator request, signed by s (nil: unsigned), as
// PartyOperator. A
// signed request's RequestedBy must be s's key id, and s's role in the
// coordinator's operator keyring must allow it.
func (e *Env) Request(t testing.TB, s *events.Signer, req schema.Request) {
	t.Helper()
	rec, err := e.Encoder(s).Encode(req)
	if err != nil {
		t.Fatalf("encode request: %v", err)
	}
	publish(t, e.requests, rec)
}

// RequestHeader is a request header for the Env's rollout, requested now.
func (e *Env) RequestHeader(id string) schema.RequestHeader {
	return schema.RequestHeader{RequestID: id, RolloutID: e.RolloutID, RequestedBy: "itest", RequestedAt: time.Now().UTC()}
}

// SendRecord publishes a raw record (to corrupt one on purpose) as
// PartyAdmin.
func (e *Env) SendRecord(t testing.TB, rec kafka.Message) {
	t.Helper()
	publish(t, e.producer, rec)
}

func publish(t testing.TB, p *events.Producer, rec kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Publish(ctx, rec); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// Encoder returns an encoder for the Env's topics signing with s (nil: unsigned).
func (e *Env) Encoder(s *events.Signer) *events.Encoder {
	return &events.Encoder{Topics: e.Topics, Source: "regshift/itest", Signer: s}
}

// AwaitAck waits for the ack of a command and returns it.
func (e *Env) AwaitAck(t testing.TB, node, commandID string) schema.Ack {
	t.Helper()
	var got schema.Ack
	Eventually(t, 60*time.Second, "ack of "+commandID, func() error {
		acks := e.collected.acksOf(node, commandID)
		if len(acks) == 0 {
			return fmt.Errorf("no ack yet")
		}
		got = acks[len(acks)-1]
		return nil
	})
	return got
}

// Acks returns every ack of a command seen so far.
func (e *Env) Acks(node, commandID string) []schema.Ack { return e.collected.acksOf(node, commandID) }

// AwaitHello waits for a hello from node published after since.
func (e *Env) AwaitHello(t testing.TB, node string, since time.Time) schema.Hello {
	t.Helper()
	var got schema.Hello
	Eventually(t, 60*time.Second, "hello from "+node, func() error {
		for _, h := range e.collected.hellos(node) {
			if !h.StartedAt.Before(since) {
				got = h
				return nil
			}
		}
		return fmt.Errorf("no hello since %s", since)
	})
	return got
}

// AwaitHealth waits for a health report from node that satisfies ok.
func (e *Env) AwaitHealth(t testing.TB, node string, what string, ok func(schema.Health) bool) schema.Health {
	t.Helper()
	var got schema.Health
	Eventually(t, 60*time.Second, what, func() error {
		for _, h := range e.collected.healths(node) {
			if ok(h) {
				got = h
				return nil
			}
		}
		return fmt.Errorf("no such health report from %s", node)
	})
	return got
}

// Registered reports whether the registry holds the instance.
func (e *Env) Registered(t testing.TB, registry, service, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := e.registries[registry].Resolve(ctx, service)
	if err != nil {
		t.Fatalf("resolve %s in %s: %v", service, registry, err)
	}
	return slices.ContainsFunc(got, func(i registries.Instance) bool { return i.ID == id })
}

// AwaitRegistered waits until the registry holds (want) or lacks (!want) the instance.
func (e *Env) AwaitRegistered(t testing.TB, registry, service, id string, want bool) {
	t.Helper()
	Eventually(t, 60*time.Second, fmt.Sprintf("%s/%s registered in %s = %v", service, id, registry, want), func() error {
		if e.Registered(t, registry, service, id) != want {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// Eventually polls check until it returns nil, failing the test after within.
func Eventually(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	wait := 20 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// TestLogger routes logs to the test's log until the test ends.
func TestLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var (
	uniqueMu sync.Mutex
	uniqueN  int
)

func unique() string {
	uniqueMu.Lock()
	defer uniqueMu.Unlock()
	uniqueN++
	return fmt.Sprintf("%x%d", time.Now().UnixNano()&0xffffffff, uniqueN)
}

func deleteTopics(brokers []string, sec events.Security, t events.Topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: sec.Transport()}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{t.Commands, t.Events, t.Requests, t.State, t.DLQ}})
}

var _ io.Writer = (*testWriter)(nil)
