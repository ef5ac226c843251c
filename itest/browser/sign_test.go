package browser_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/browser"
	"github.com/regshift/regshift/schema"
)

// TestWebCryptoSignsLikeGo loads an operator key that `regshift keys
// generate` would write into a page as a user picks a file, imports it with
// WebCrypto as the console's sign.js (coordinator/server/console) does, signs a request there and checks the
// signature byte for byte against Go's, and that the coordinator's request
// verifier accepts it. The body holds characters of two, three and four
// UTF-8 bytes, so a length counted in UTF-16 units (JavaScript's
// string.length) would change the signed bytes and fail the test.
func TestWebCryptoSignsLikeGo(t *testing.T) {
	// The console's own sign.js, beside a test page (on 127.0.0.1).
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	mux.HandleFunc("/sign.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("..", "..", "coordinator", "server", "console", "sign.js"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := browser.New(t)

	// The operator's key folder, as `regshift keys generate -id ops-bot`
	// leaves it, and the coordinator's keyring with the .pub and a role.
	const id = "ops-bot"
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath, err := events.WriteKeyPair(t.TempDir(), id, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyring := t.TempDir()
	copyFile(t, pubPath, filepath.Join(keyring, id+events.PublicKeyExt))
	if err := os.WriteFile(filepath.Join(keyring, events.RolesFile), []byte(id+" operate\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Second)
	req := &schema.Pause{RequestHeader: schema.RequestHeader{
		RequestID:   "req-browser-1",
		RequestedAt: now,
		RolloutID:   "orders-to-consul",
		RequestedBy: id,
		Reason:      "café closes at 5 € — ☃ 🦀", // é €: 2, 3 bytes; 🦀: 4 bytes, 2 UTF-16 units
	}}
	body, err := schema.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("é")) || len(body) == len(utf16.Encode([]rune(string(body)))) {
		t.Fatalf("the body must carry non-ASCII as raw UTF-8, so byte and UTF-16 lengths differ: %s", body)
	}

	b.Navigate(srv.URL + "/sign.html")
	b.WaitText("#status", "ready")
	if !browser.Eval[bool](b, `window.isSecureContext && typeof crypto.subtle?.sign === "function"`) {
		t.Fatalf("%s is not a secure context with WebCrypto: the console could not sign there", srv.URL)
	}

	b.SetFiles("#key", keyPath)
	b.WaitText("#status", "key "+id+" loaded")

	// The signed bytes first: when they differ, the signatures say little.
	paeJS := browser.Eval[string](b, browser.Call(`(type, body) => sign.base64(sign.pae(type, body))`, schema.TypePause, string(body)))
	if want := events.PAE(schema.TypePause, body); paeJS != base64.StdEncoding.EncodeToString(want) {
		got, _ := base64.StdEncoding.DecodeString(paeJS)
		t.Fatalf("PAE in the browser:\n\t%q\nin Go:\n\t%q", got, want)
	}

	sigJS := browser.Eval[string](b, browser.Call(`(type, body) => sign.signRequest(window.signingKey, type, body)`, schema.TypePause, string(body)))
	signer, err := events.LoadSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(signer.Sign(schema.TypePause, body)); sigJS != want {
		t.Fatalf("signature from the browser %s, from Go %s", sigJS, want)
	}

	// The coordinator's verifier accepts the browser's signature, and
	// refuses it over a body with one character changed.
	keys, err := events.LoadKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	v, err := events.NewRequestVerifier(events.DefaultRequestVerifierConfig(), keys)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigJS)
	if err != nil {
		t.Fatal(err)
	}
	env := events.Envelope{
		ID: req.RequestID, Type: schema.TypePause, Source: "regshift/console", Time: now,
		PartitionKey: req.RolloutID, KeyID: id, Signature: sig, Data: body,
	}
	topic := events.NewTopics("").Requests
	d, err := v.Decode(env.Message(topic))
	if err != nil {
		t.Fatalf("the request verifier refused the browser's signature: %v", err)
	}
	if got := d.Message.(*schema.Pause).Reason; got != req.Reason {
		t.Fatalf("verified reason %q, want %q", got, req.Reason)
	}
	env.Data = bytes.Replace(body, []byte("é"), []byte("e"), 1)
	var rej *events.RejectError
	if _, err := v.Decode(env.Message(topic)); !errors.As(err, &rej) || rej.Reason != events.ReasonBadSignature {
		t.Fatalf("a changed body verified: %v, want %s", err, events.ReasonBadSignature)
	}

	// The key never leaves the page: it is not extractable.
	if got := browser.Eval[string](b, `(() => { const k = window.signingKey; return [k.type, k.algorithm.name, k.extractable, k.usages.join()].join(" "); })()`); got != "private Ed25519 false sign" {
		t.Fatalf("imported key: %s, want a private Ed25519 key, not extractable, for sign only", got)
	}
	for _, format := range []string{"pkcs8", "jwk", "raw"} {
		got := browser.Eval[string](b, browser.Call(`(f) => crypto.subtle.exportKey(f, window.signingKey).then(() => "exported", e => e.name)`, format))
		if got != "InvalidAccessError" {
			t.Errorf("exportKey(%q) of the signing key: %s, want InvalidAccessError", format, got)
		}
	}
	b.RequireNoExceptions()
	if bl := b.Blocked(); len(bl) > 0 {
		t.Errorf("the page reached beyond 127.0.0.1: %s", strings.Join(bl, ", "))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
