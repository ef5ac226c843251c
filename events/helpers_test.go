package events_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// now is inside the validity window of the example commands
// (issued 10:00:00, expiring 10:05:00) and of the example requests.
var now = time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC)

func clock() time.Time { return now }

const node = "node-17" // the node the example commands address

func newSigner(t testing.TB, id string) *events.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.NewSigner(id, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyringOf trusts the signers' keys, each as admin (a role only requests
// look at).
func keyringOf(t testing.TB, signers ...*events.Signer) *events.Keyring {
	t.Helper()
	k := events.NewKeyring()
	for _, s := range signers {
		if err := errors.Join(k.Add(s.KeyID, s.Public()), k.Grant(s.KeyID, events.RoleAdmin)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// example decodes the schema package's example of typ.
func example(t testing.TB, typ string) schema.Message {
	t.Helper()
	spec, err := schema.Lookup(typ)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "schema", "testdata", "examples", spec.File()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := schema.Decode(typ, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func encoder(topics events.Topics, s *events.Signer) *events.Encoder {
	return &events.Encoder{Topics: topics, Source: "regshift/test", Signer: s, Now: clock}
}

func encode(t testing.TB, e *events.Encoder, m schema.Message) kafka.Message {
	t.Helper()
	rec, err := e.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testMetrics(t testing.TB) (*events.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := events.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func setHeader(rec kafka.Message, key, value string) kafka.Message {
	h := make([]kafka.Header, 0, len(rec.Headers))
	found := false
	for _, x := range rec.Headers {
		if x.Key == key {
			x.Value, found = []byte(value), true
		}
		h = append(h, x)
	}
	if !found {
		h = append(h, kafka.Header{Key: key, Value: []byte(value)})
	}
	rec.Headers = h
	return rec
}

func dropHeader(rec kafka.Message, key string) kafka.Message {
	h := make([]kafka.Header, 0, len(rec.Headers))
	for _, x := range rec.Headers {
		if x.Key != key {
			h = append(h, x)
		}
	}
	rec.Headers = h
	return rec
}

// counter sums the series of a counter that match labels, 0 when none was touched.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return itest.Counter(t, reg, name, labels)
}

// awaitDeadLetters waits until n dead letters were published: a batch's
// are, once its handler is done with it.
func awaitDeadLetters(t testing.TB, reg *prometheus.Registry, n float64) {
	t.Helper()
	waitFor(t, 60*time.Second, "the dead letters", func() bool {
		return counter(t, reg, "regshift_events_dead_letters_total", nil) == n
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func base64Sig(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

func mustKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// embeddedKafka starts an in-process broker (franz-go's kfake) that speaks
// the Kafka protocol, closed at cleanup.
func embeddedKafka(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// requestVerifier is the coordinator's decoder of requests signed by
// signers, at the test clock.
func requestVerifier(t testing.TB, signers ...*events.Signer) *events.RequestVerifier {
	t.Helper()
	cfg := events.DefaultRequestVerifierConfig()
	cfg.Now = clock
	v, err := events.NewRequestVerifier(cfg, keyringOf(t, signers...))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
