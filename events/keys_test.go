package events_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestPAEGolden pins the signed bytes: DSSEv1 SP len(type) SP type SP len(body) SP body.
func TestPAEGolden(t *testing.T) {
	got := events.PAE(schema.TypePause, []byte(`{"a":1}`))
	golden(t, "pae.golden", append(got, '\n'))
}

func TestLoadKeyringHonoursRevocations(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"alice", "bob"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := events.WriteKeyPair(dir, id, priv); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, events.RevokedFile), []byte("# left the team\nbob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, events.RolesFile), []byte("alice operate\nbob operate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := events.DefaultRequestVerifierConfig()
	cfg.Now = clock
	v, err := events.NewRequestVerifier(cfg, ring)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]events.Reason{"alice": "", "bob": events.ReasonRevokedKey} {
		s, err := events.LoadSigner(filepath.Join(dir, id+events.PrivateKeyExt))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Decode(encode(t, encoder(topics, s), example(t, schema.TypePause)))
		if got, _ := events.ReasonOf(err); got != want {
			t.Errorf("request signed by %s: %v, want reason %q", id, err, want)
		}
	}
}

func TestKeyFilesRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for _, id := range []string{"", "../x", "a/b", "x.key", "-lead"} {
		if _, _, err := events.WriteKeyPair(dir, id, priv); !errors.Is(err, events.ErrBadKeyID) {
			t.Errorf("key id %q: %v, want ErrBadKeyID", id, err)
		}
	}
	pubOnly := filepath.Join(dir, "only.pub")
	if err := os.WriteFile(pubOnly, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadSigner(pubOnly); err == nil {
		t.Error("LoadSigner read a public key file")
	}
	if _, err := events.LoadKeyring(dir); err == nil {
		t.Error("LoadKeyring accepted a malformed public key")
	}
	if _, err := events.LoadPublicKey(filepath.Join(dir, "missing.pub")); err == nil {
		t.Error("LoadPublicKey of a missing file")
	}
}
