package events_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// keyFolder writes a key pair for each id into a new folder and returns
// the folder and the signers.
func keyFolder(t *testing.T, ids ...string) (string, map[string]*events.Signer) {
	t.Helper()
	dir := t.TempDir()
	signers := map[string]*events.Signer{}
	for _, id := range ids {
		signers[id] = itest.KeyPair(t, dir, id)
	}
	return dir, signers
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	itest.ReplaceFile(t, filepath.Join(dir, name), text)
}

// verdict is how a verifier on ring answers a pause signed by s (with
// requested_by its key id): "" accepted, else the reason.
func verdict(t *testing.T, ring *events.Keyring, s *events.Signer) events.Reason {
	t.Helper()
	cfg := events.DefaultRequestVerifierConfig()
	cfg.Now = clock
	v, err := events.NewRequestVerifier(cfg, ring)
	if err != nil {
		t.Fatal(err)
	}
	p := example(t, schema.TypePause).(*schema.Pause)
	p.RequestedBy = s.KeyID
	_, err = v.Decode(encode(t, encoder(topics, s), p))
	if err == nil {
		return ""
	}
	r, ok := events.ReasonOf(err)
	if !ok {
		t.Fatalf("error without a reason: %v", err)
	}
	return r
}

func TestKeyringRolesFile(t *testing.T) {
	dir, _ := keyFolder(t, "alice", "bob", "carol")
	writeFile(t, dir, events.RolesFile, "# key  role\nalice admin\nbob   operate   # on call\n")
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]events.Role{"alice": events.RoleAdmin, "bob": events.RoleOperate, "carol": events.RoleObserve, "nobody": events.RoleObserve} {
		if got := ring.Role(id); got != want {
			t.Errorf("role of %s: %q, want %q", id, got, want)
		}
	}

	for _, tc := range []struct{ name, roles, want string }{
		{"unknown role", "alice admin\nbob superuser\n", `roles:2: key bob: unknown role "superuser" (want observe, operate or admin)`},
		{"no role", "alice\n", `roles:1: "alice": want "<key id> <role>"`},
		{"named twice", "alice admin\nalice operate\n", "roles:2: key alice is named twice"},
		{"bad key id", "../alice admin\n", `roles:1: bad key id: "../alice"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, dir, events.RolesFile, tc.roles)
			_, err := events.LoadKeyring(dir)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.want)) {
				t.Fatalf("LoadKeyring: %v, want an error saying %q", err, filepath.Join(dir, tc.want))
			}
		})
	}
}

// TestKeyringReloadsWhileRunning changes a watched keyring folder the ways
// an operator does — add a key, revoke one in the revoked file, delete a
// .pub, change a role — and each takes effect within a few polls, without
// a restart. A malformed change keeps the last good keys, yet its
// revocations still apply.
func TestKeyringReloadsWhileRunning(t *testing.T) {
	dir, keys := keyFolder(t, "alice", "bob")
	writeFile(t, dir, events.RolesFile, "alice operate\nbob operate\n")
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, reg := testMetrics(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ring.Watch(ctx, 20*time.Millisecond, testLogger(t), m) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	await := func(what string, s *events.Signer, want events.Reason) {
		t.Helper()
		waitFor(t, 5*time.Second, what, func() bool { return verdict(t, ring, s) == want })
	}
	await("alice trusted", keys["alice"], "")

	// A key added while running.
	elsewhere := t.TempDir()
	carol := itest.KeyPair(t, elsewhere, "carol")
	if verdict(t, ring, carol) != events.ReasonUnknownKey {
		t.Fatal("carol trusted before her key is in the folder")
	}
	pub, err := os.ReadFile(filepath.Join(elsewhere, "carol.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "carol.pub", string(pub))
	await("carol's key observes", carol, events.ReasonForbidden)
	writeFile(t, dir, events.RolesFile, "alice operate\nbob operate\ncarol operate\n")
	await("carol operates", carol, "")

	// Revoked in the file (appended, as `echo bob >> revoked` does).
	f, err := os.OpenFile(filepath.Join(dir, events.RevokedFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("bob # left the team\n")
	_ = f.Close()
	await("bob revoked", keys["bob"], events.ReasonRevokedKey)

	// A .pub deleted.
	if err := os.Remove(filepath.Join(dir, "carol.pub")); err != nil {
		t.Fatal(err)
	}
	await("carol's key gone", carol, events.ReasonUnknownKey)

	// A malformed change: a broken .pub and an unknown role. The last good
	// keyring stays (alice still operates) but the revocation made in the
	// same change applies.
	writeFile(t, dir, "mallory.pub", "not a key\n")
	writeFile(t, dir, events.RolesFile, "alice operate\nbob root\n")
	waitFor(t, 5*time.Second, "the refused change counted", func() bool {
		return counter(t, reg, "regshift_events_keyring_reloads_total", map[string]string{"outcome": "refused"}) >= 1
	})
	if r := verdict(t, ring, keys["alice"]); r != "" {
		t.Fatalf("alice after a malformed change: %s, want still accepted", r)
	}
	writeFile(t, dir, events.RevokedFile, "bob\nalice\n")
	await("alice revoked though the folder is still malformed", keys["alice"], events.ReasonRevokedKey)

	// Fixed: everything is read again.
	if err := errors.Join(os.Remove(filepath.Join(dir, "mallory.pub")), os.Remove(filepath.Join(dir, events.RevokedFile))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, events.RolesFile, "alice admin\n")
	await("alice back", keys["alice"], "")
	if ring.Role("alice") != events.RoleAdmin || ring.Role("bob") != events.RoleObserve {
		t.Fatalf("roles after the fix: alice %s, bob %s", ring.Role("alice"), ring.Role("bob"))
	}
	if n := counter(t, reg, "regshift_events_keyring_reloads_total", map[string]string{"outcome": "reloaded"}); n < 5 {
		t.Errorf("%v reloads counted, want at least 5", n)
	}
}

// TestKeyringRevokeOutlivesReload: a key revoked in code stays revoked
// when the folder is read again.
func TestKeyringRevokeOutlivesReload(t *testing.T) {
	dir, keys := keyFolder(t, "alice")
	writeFile(t, dir, events.RolesFile, "alice operate\n")
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	ring.Revoke("alice")
	writeFile(t, dir, events.RolesFile, "alice admin\n")
	if changed, err := ring.Reload(); !changed || err != nil {
		t.Fatalf("Reload = %v, %v; want a change", changed, err)
	}
	if r := verdict(t, ring, keys["alice"]); r != events.ReasonRevokedKey {
		t.Fatalf("alice after a reload: %q, want revoked", r)
	}
	if changed, err := ring.Reload(); changed || err != nil {
		t.Fatalf("Reload of an unchanged folder = %v, %v", changed, err)
	}
	if _, err := events.NewKeyring().Reload(); err == nil {
		t.Error("Reload of a keyring that follows no folder")
	}
}

// BenchmarkKeyringPoll is what a watched keyring of 10,000 keys (one per
// node) costs a poll when nothing changed: "glance" as most polls of Watch
// look, "thorough" as every thoroughEvery-th (and Reload) do.
func BenchmarkKeyringPoll(b *testing.B) {
	dir := b.TempDir()
	_, priv := mustKey(b)
	for i := range 10_000 {
		if _, _, err := events.WriteKeyPair(dir, fmt.Sprintf("node-%05d", i), priv); err != nil {
			b.Fatal(err)
		}
	}
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		b.Fatal(err)
	}
	for name, thorough := range map[string]bool{"glance": false, "thorough": true} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if changed, err := events.ReloadKeyring(ring, thorough); changed || err != nil {
					b.Fatalf("Reload = %v, %v", changed, err)
				}
			}
		})
	}
}
