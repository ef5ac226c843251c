package events_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestKcatPublishedRequestIsAccepted runs the documented kcat + openssl
// recipe (testdata/publish-request.sh) against the real broker and checks
// that the coordinator's request verifier accepts what it published, and
// refuses it once the key is revoked.
func TestKcatPublishedRequestIsAccepted(t *testing.T) {
	brokers := servers.RequireKafka(t)
	for _, tool := range []string{"kcat", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if servers.Required() {
				t.Fatalf("%s is not installed (make deps installs it): %v", tool, err)
			}
			t.Skipf("%s is not installed (make deps installs it)", tool)
		}
	}
	tp := bootstrap(t, brokers, nil)
	dir := t.TempDir()
	_, priv := mustKey(t)
	keyPath, _, err := events.WriteKeyPair(dir, "ops-bot", priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, events.RolesFile), []byte("ops-bot operate # pause, resume, approve\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	publish := func(kind, reason string) string {
		cmd := exec.Command("bash", filepath.Join("testdata", "publish-request.sh"))
		cmd.Env = append(os.Environ(), "BROKER="+brokers[0], "TOPIC="+tp.Requests, "KEY="+keyPath,
			"ROLLOUT=ro-kcat", "REQUESTED_BY=ops-bot", "KIND="+kind, "REASON="+reason)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("publish-request.sh: %v\n%s", err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	pauseID := publish("pause", "change freeze")
	approveID := publish("approve", "")

	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	v, err := events.NewRequestVerifier(events.DefaultRequestVerifierConfig(), ring)
	if err != nil {
		t.Fatal(err)
	}
	got := newCollector()
	groupConsumer(t, brokers, tp.Requests, tp.DLQ, v, got.handle, m, pub)
	waitFor(t, 60*time.Second, "both kcat requests", func() bool { return got.len() == 2 })
	p, _ := got.get(pauseID)
	if p, ok := p.(*schema.Pause); !ok || p.RolloutID != "ro-kcat" || p.Reason != "change freeze" || p.RequestedBy != "ops-bot" {
		t.Errorf("pause from kcat decoded as %#v", p)
	}
	if a, _ := got.get(approveID); a == nil || a.MessageType() != schema.TypeApprove {
		t.Errorf("approve from kcat decoded as %#v", a)
	}

	// The same recipe with a revoked key lands in the DLQ with its reason.
	ring.Revoke("ops-bot")
	publish("abort", "")
	waitFor(t, 60*time.Second, "the revoked-key request dead-lettered", func() bool {
		return counter(t, reg, "regshift_events_dead_letters_total", map[string]string{"reason": string(events.ReasonRevokedKey)}) == 1
	})
}
