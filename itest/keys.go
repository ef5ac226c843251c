package itest

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/regshift/regshift/events"
)

// KeyPair makes a new key pair <dir>/<id>.key and <dir>/<id>.pub, as
// `regshift keys generate` does, and returns its signer and the private
// key file.
func KeyPair(t testing.TB, dir, id string) (*events.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file, _, err := events.WriteKeyPair(dir, id, priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.NewSigner(id, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, file
}

// Enrol copies id's public key from dir into keysDir, the folder a
// verifier trusts (a coordinator's nodeKeysDir, an agent's trust.keysDir).
func Enrol(t testing.TB, dir, id, keysDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, id+events.PublicKeyExt))
	if err == nil {
		err = os.WriteFile(filepath.Join(keysDir, id+events.PublicKeyExt), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}
