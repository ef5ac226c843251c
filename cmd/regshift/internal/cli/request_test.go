package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

const planFile = "../../../../coordinator/testdata/plan.yaml"

// unsignedVerifier is the coordinator's verifier where unsigned requests
// are allowed and no key is known.
func unsignedVerifier(t *testing.T) *events.RequestVerifier {
	t.Helper()
	cfg := events.DefaultRequestVerifierConfig()
	cfg.AllowUnsigned = true
	v, err := events.NewRequestVerifier(cfg, events.NewKeyring())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// requestID is the id the command printed for what it published.
func requestID(t *testing.T, out string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if id, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "request id: "); ok {
			return id
		}
	}
	t.Fatalf("no request id in the output:\n%s", out)
	return ""
}

// TestRequestsReachTheRequestsTopic publishes every request kind with the
// command line to the real broker, reads each record back from the requests
// topic and decodes it with the coordinator's verifier: signed ones with a
// keyring holding the operator's key, unsigned ones only where unsigned
// requests are allowed.
func TestRequestsReachTheRequestsTopic(t *testing.T) {
	brokers := servers.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix = "clitest." + newRequestID()[4:] + "."
	tcfg.CommandPartitions, tcfg.RequestPartitions = 1, 1 // one partition: records come back in publishing order
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		t.Fatalf("bootstrap topics: %v", err)
	}
	t.Cleanup(func() { deleteTopics(brokers, topics) })

	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, _, err := events.WriteKeyPair(dir, "alice", priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, events.RolesFile), []byte("alice admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	signedOnly, err := events.NewRequestVerifier(events.DefaultRequestVerifierConfig(), ring)
	if err != nil {
		t.Fatal(err)
	}
	unsignedToo := unsignedVerifier(t)
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topics.Requests, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = reader.Close() })

	const rollout = "ro-cli-test"
	plan, err := loadPlan(planFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		signed bool
		by     string
		check  func(schema.Request) bool
	}{
		{"create signed", []string{"rollout", "create", "-f", planFile, "-key", keyPath, "-reason", "move to consul"}, true, "alice",
			func(m schema.Request) bool {
				c, ok := m.(*schema.CreateRollout)
				return ok && c.Reason == "move to consul" && c.Plan.To.Package.Digest == plan.To.Package.Digest && len(c.Plan.Nodes) == len(plan.Nodes)
			}},
		{"pause signed", []string{"rollout", "pause", "-key", keyPath, "-by", "alice", "-reason", "change freeze"}, true, "alice",
			func(m schema.Request) bool { p, ok := m.(*schema.Pause); return ok && p.Reason == "change freeze" }},
		{"resume unsigned", []string{"rollout", "resume", "-by", "bob@ops"}, false, "bob@ops",
			func(m schema.Request) bool { _, ok := m.(*schema.Resume); return ok }},
		{"approve wave 2", []string{"rollout", "approve", "-wave", "2", "-key", keyPath}, true, "alice",
			func(m schema.Request) bool { a, ok := m.(*schema.Approve); return ok && a.Wave != nil && *a.Wave == 2 }},
		{"approve any wave unsigned", []string{"rollout", "approve", "-by", "carol"}, false, "carol",
			func(m schema.Request) bool { a, ok := m.(*schema.Approve); return ok && a.Wave == nil }},
		{"abort signed", []string{"rollout", "abort", "-key", keyPath, "-reason", "parity dropped"}, true, "alice",
			func(m schema.Request) bool { a, ok := m.(*schema.Abort); return ok && a.Reason == "parity dropped" }},
		{"finalize unsigned", []string{"rollout", "finalize", "-by", "carol"}, false, "carol",
			func(m schema.Request) bool { _, ok := m.(*schema.Finalize); return ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now().Add(-time.Second)
			args := append(tc.args, "-id", rollout, "-brokers", strings.Join(brokers, ","), "-prefix", tcfg.Prefix)
			out, stderr, err := run(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			id := requestID(t, out)
			rec, err := reader.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read back from %s: %v", topics.Requests, err)
			}
			if string(rec.Key) != rollout {
				t.Errorf("record key %q, want the rollout id %q", rec.Key, rollout)
			}
			v, refuse := unsignedToo, signedOnly
			if tc.signed {
				v, refuse = signedOnly, unsignedToo
			}
			d, err := v.Decode(rec)
			if err != nil {
				t.Fatalf("the coordinator's verifier refuses the record: %v", err)
			}
			req := d.Message.(schema.Request)
			h := req.Requested()
			switch {
			case d.Envelope.ID != id || h.RequestID != id:
				t.Errorf("ce_id %q, body request_id %q, printed %q", d.Envelope.ID, h.RequestID, id)
			case h.RolloutID != rollout || h.RequestedBy != tc.by:
				t.Errorf("rollout %q by %q, want %q by %q", h.RolloutID, h.RequestedBy, rollout, tc.by)
			case h.RequestedAt.Before(start.Truncate(time.Second)) || h.RequestedAt.After(time.Now()):
				t.Errorf("requested_at %s is not now", h.RequestedAt)
			case !tc.check(req):
				t.Errorf("decoded %#v", req)
			case !strings.Contains(out, "published "+req.MessageType()):
				t.Errorf("output does not name the type %s:\n%s", req.MessageType(), out)
			}
			// A signed record fails where its key is unknown; an unsigned one
			// where signatures are required.
			var rej *events.RejectError
			want := events.ReasonUnknownKey
			if !tc.signed {
				want = events.ReasonUnsigned
			}
			if _, err := refuse.Decode(rec); !errors.As(err, &rej) || rej.Reason != want {
				t.Errorf("the other verifier: %v, want a %s refusal", err, want)
			}
		})
	}
}

func TestRequestUsageErrors(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, _, err := events.WriteKeyPair(t.TempDir(), "alice", priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rollout", "pause"}, 2, "-id is required"},
		{[]string{"rollout", "create", "-id", "ro-1"}, 2, "-f is required"},
		{[]string{"rollout", "approve", "-id", "ro-1", "-wave", "-1"}, 2, "waves count from 1"},
		{[]string{"rollout", "abort", "-id", "ro-1", "-key", "/nonexistent/alice.key"}, 1, "-key:"},
		{[]string{"rollout", "pause", "-id", "ro-1", "-key", keyPath, "-by", "bob"}, 2, "a signed request is by its key, alice"},
		{[]string{"rollout", "create", "-id", "ro-1", "-f", "/nonexistent/plan.yaml"}, 1, "invalid rollout plan"},
		{[]string{"rollout", "pause", "-id", "not a valid id", "-brokers", "127.0.0.1:1"}, 1, "rollout_id"},
		{[]string{"coordinator"}, 2, "-c is required"},
		{[]string{"coordinator", "-c", "/nonexistent/coordinator.yaml"}, 1, "invalid coordinator config"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, err := run(t, tc.args...)
			if ExitCode(err) != tc.code || !strings.Contains(err.Error()+stderr, tc.want) {
				t.Errorf("error %v (exit %d), want exit %d and %q", err, ExitCode(err), tc.code, tc.want)
			}
		})
	}
}

func deleteTopics(brokers []string, topics events.Topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topics.Commands, topics.Events, topics.Requests, topics.State, topics.DLQ}})
}
