package itest

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/events"
)

// KeyPair writes a new key pair, <dir>/<id>.key and <dir>/<id>.pub, as
// `regshift keys generate` does, and returns its signer.
func KeyPair(t testing.TB, dir, id string) *events.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path, _, err := events.WriteKeyPair(dir, id, priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
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

// Counter sums the series of counter name in g whose labels include
// labels; 0 when none was touched.
func Counter(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// ReplaceFile replaces the file at path with text at once (a new file
// renamed over it), as a keyring folder's files are to be changed: a file
// rewritten in place may be read while it is truncated.
func ReplaceFile(t testing.TB, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
