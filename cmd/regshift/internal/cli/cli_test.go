package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regshift/regshift/events"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = (&CLI{Stdout: &o, Stderr: &e}).Run(context.Background(), args)
	return o.String(), e.String(), err
}

func TestKeysGenerateWritesAUsableKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, _, err := run(t, "keys", "generate", "-id", "coord-1", "-out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "key id:      coord-1") || !strings.Contains(out, "fingerprint: sha256:") {
		t.Errorf("output:\n%s", out)
	}
	st, err := os.Stat(filepath.Join(dir, "coord-1.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	signer, err := events.LoadSigner(filepath.Join(dir, "coord-1.key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := events.LoadPublicKey(filepath.Join(dir, "coord-1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if signer.KeyID != "coord-1" || !pub.Equal(signer.Public()) {
		t.Fatalf("loaded key id %q, public keys equal %v", signer.KeyID, pub.Equal(signer.Public()))
	}
	body := []byte(`{"x":1}`)
	if !ed25519.Verify(pub, events.PAE("t", body), signer.Sign("t", body)) {
		t.Error("a signature by the .key does not verify with the .pub")
	}
	ring, err := events.LoadKeyring(dir)
	if err != nil || ring.Len() != 1 {
		t.Fatalf("keyring from the folder: %v keys, %v", ring.Len(), err)
	}

	if _, _, err := run(t, "keys", "generate", "-id", "coord-1", "-out", dir); err == nil || ExitCode(err) != 1 {
		t.Errorf("overwriting an existing key: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: regshift"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"keys", "generate"}, 2, "-id is required"},
		{[]string{"keys", "generate", "-id", "../escape"}, 2, "bad key id"},
		{[]string{"keys", "generate", "-id", "a", "extra"}, 2, "unexpected arguments"},
		{[]string{"keys", "generate", "-bogus"}, 2, "flag provided but not defined"},
		{[]string{"help"}, 0, ""},
		{[]string{"keys", "generate", "-h"}, 0, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, err := run(t, tc.args...)
			if got := ExitCode(err); got != tc.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tc.code)
			}
			if tc.want != "" && !strings.Contains(err.Error()+stderr, tc.want) {
				t.Errorf("error %q / stderr %q lacks %q", err, stderr, tc.want)
			}
		})
	}
}
