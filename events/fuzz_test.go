package events_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// The fuzz targets feed records through decode + validate + verify. Their
// seeds are in testdata/fuzz/<target>/ (rewrite them with
// `go test -run TestFuzzSeeds -update`); `make fuzz` runs each briefly.

// fuzzKey is a fixed key so seeds stay valid across runs.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func fuzzSigner(t testing.TB) *events.Signer { return fuzzSignerAs(t, "coord-1") }

// fuzzOperator signs requests: its key id is the examples' requested_by.
func fuzzOperator(t testing.TB) *events.Signer { return fuzzSignerAs(t, "alice") }

func fuzzSignerAs(t testing.TB, id string) *events.Signer {
	s, err := events.NewSigner(id, fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// record builds a record from fuzz input. When sign is set the harness
// signs (typ, value) with the trusted key, so the fuzzer reaches the checks
// after the signature; otherwise sig is used as the signature header.
func fuzzRecord(s *events.Signer, key, id, typ string, value []byte, sign bool, sig string) kafka.Message {
	env := events.Envelope{ID: id, Type: typ, Source: "fuzz", Time: now, PartitionKey: key, Data: value}
	rec := env.Message("fuzz")
	rec.Headers = append(rec.Headers, kafka.Header{Key: events.HeaderKeyID, Value: []byte(s.KeyID)})
	if sign {
		sig = base64Sig(s.Sign(typ, value))
	}
	rec.Headers = append(rec.Headers, kafka.Header{Key: events.HeaderSignature, Value: []byte(sig)})
	return rec
}

// checkAccepted holds for every delivery: the signature verifies over the
// exact bytes and the decoded message encodes back into a valid body.
func checkAccepted(t *testing.T, s *events.Signer, d events.Delivery) {
	if !ed25519.Verify(s.Public(), events.PAE(d.Envelope.Type, d.Envelope.Data), d.Envelope.Signature) {
		t.Fatalf("accepted a record whose signature does not verify: %+v", d.Envelope)
	}
	if _, err := schema.Encode(d.Message); err != nil {
		t.Fatalf("accepted %s that does not encode back: %v", d.Envelope.Type, err)
	}
}

func FuzzCommandVerify(f *testing.F) {
	s := fuzzSigner(f)
	keys := keyringOf(f, s)
	f.Fuzz(func(t *testing.T, key, id, typ string, value []byte, sign bool, sig string) {
		fuzzCommand(t, s, keys, key, id, typ, value, sign, sig)
	})
}

// fuzzCommand runs one input and reports whether it was accepted.
func fuzzCommand(t *testing.T, s *events.Signer, keys *events.Keyring, key, id, typ string, value []byte, sign bool, sig string) bool {
	{
		replay := events.NewReplay()
		replay.Record(schema.CommandHeader{CommandID: "cmd-0000", Epoch: 2})
		cfg := events.DefaultCommandVerifierConfig(node)
		cfg.Now = clock
		v, err := events.NewCommandVerifier(cfg, keys, replay)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Decode(fuzzRecord(s, key, id, typ, value, sign, sig))
		if err != nil {
			if _, ok := events.ReasonOf(err); !ok && err != events.ErrSkip {
				t.Fatalf("error without a reason: %v", err)
			}
			return false
		}
		checkAccepted(t, s, d)
		h := d.Message.(schema.Command).Header()
		if h.NodeID != node || h.CommandID != id || h.Epoch < 2 || h.CommandID == "cmd-0000" {
			t.Fatalf("accepted %+v", h)
		}
		return true
	}
}

func FuzzRequestVerify(f *testing.F) {
	s := fuzzOperator(f)
	keys := keyringOf(f, s)
	f.Fuzz(func(t *testing.T, key, id, typ string, value []byte, sign bool, sig string) {
		fuzzRequest(t, s, keys, key, id, typ, value, sign, sig)
	})
}

// fuzzRequest runs one input and reports whether it was accepted.
func fuzzRequest(t *testing.T, s *events.Signer, keys *events.Keyring, key, id, typ string, value []byte, sign bool, sig string) bool {
	{
		cfg := events.DefaultRequestVerifierConfig()
		cfg.Now = clock
		v, err := events.NewRequestVerifier(cfg, keys)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Decode(fuzzRecord(s, key, id, typ, value, sign, sig))
		if err != nil {
			if _, ok := events.ReasonOf(err); !ok {
				t.Fatalf("error without a reason: %v", err)
			}
			return false
		}
		checkAccepted(t, s, d)
		if r := d.Message.(schema.Request).Requested(); r.RequestID != id || r.RolloutID != key {
			t.Fatalf("accepted %+v under ce_id %q key %q", r, id, key)
		}
		return true
	}
}

// fuzzNodes are the node keys FuzzEventVerifier's keyring trusts, fixed
// so seeds stay valid: node-17 (the examples' node) and node-18.
func fuzzNodes(t testing.TB) map[string]*events.Signer {
	nodes := map[string]*events.Signer{}
	for _, n := range []byte{17, 18} {
		s, err := events.NewSigner(fmt.Sprintf("node-%d", n), ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize)))
		if err != nil {
			t.Fatal(err)
		}
		nodes[s.KeyID] = s
	}
	return nodes
}

// FuzzEventVerifier feeds records to the coordinator's event verifier.
// keyID names the signing key (none when empty); when sign is set the
// harness signs (typ, value) with that node's key — or, for a key id the
// keyring does not hold, with node-18's — so the fuzzer reaches the checks
// after the signature; otherwise sig is the signature header.
func FuzzEventVerifier(f *testing.F) {
	nodes := fuzzNodes(f)
	keys := keyringOf(f, nodes["node-17"], nodes["node-18"])
	f.Fuzz(func(t *testing.T, key, keyID, typ string, value []byte, sign bool, sig string) {
		fuzzEvent(t, nodes, keys, key, keyID, typ, value, sign, sig)
	})
}

// fuzzEvent runs one input through a verifier that requires signatures
// and one that allows unsigned events, checks what either accepts, and
// reports whether the first accepted it.
func fuzzEvent(t *testing.T, nodes map[string]*events.Signer, keys *events.Keyring, key, keyID, typ string, value []byte, sign bool, sig string) bool {
	env := events.Envelope{ID: "evt-1", Type: typ, Source: "fuzz", Time: now, PartitionKey: key, Data: value}
	rec := env.Message("fuzz")
	if keyID != "" {
		if sign {
			s, ok := nodes[keyID]
			if !ok {
				s = nodes["node-18"]
			}
			sig = base64Sig(s.Sign(typ, value))
		}
		rec.Headers = append(rec.Headers, kafka.Header{Key: events.HeaderKeyID, Value: []byte(keyID)},
			kafka.Header{Key: events.HeaderSignature, Value: []byte(sig)})
	}
	accepted := false
	for _, allowUnsigned := range []bool{false, true} {
		v, err := events.NewEventVerifier(events.EventVerifierConfig{AllowUnsigned: allowUnsigned}, keys)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Decode(rec)
		if err != nil {
			if _, ok := events.ReasonOf(err); !ok {
				t.Fatalf("error without a reason: %v", err)
			}
			continue
		}
		if _, err := schema.Encode(d.Message); err != nil {
			t.Fatalf("accepted %s that does not encode back: %v", d.Envelope.Type, err)
		}
		node := d.Message.PartitionKey()
		if node != string(rec.Key) || node != d.Envelope.PartitionKey {
			t.Fatalf("accepted an event of node %q under key %q partitionkey %q", node, rec.Key, d.Envelope.PartitionKey)
		}
		if d.Envelope.KeyID == "" {
			if !allowUnsigned {
				t.Fatalf("accepted an unsigned %s", d.Envelope.Type)
			}
			continue
		}
		s, ok := nodes[node]
		if d.Envelope.KeyID != node || !ok || !ed25519.Verify(s.Public(), events.PAE(d.Envelope.Type, d.Envelope.Data), d.Envelope.Signature) {
			t.Fatalf("accepted an event of node %q signed as %q whose signature is not that node's", node, d.Envelope.KeyID)
		}
		accepted = accepted || !allowUnsigned
	}
	return accepted
}

// FuzzEnvelope fuzzes the headers themselves: "k=v" lines.
func FuzzEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string, headers string, value []byte) {
		rec := kafka.Message{Key: []byte(key), Value: value}
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, "=")
			rec.Headers = append(rec.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		env, err := events.ParseEnvelope(rec)
		if err != nil {
			if _, ok := events.ReasonOf(err); !ok {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if env.ID == "" || env.Type == "" || env.Source == "" || env.PartitionKey == "" {
			t.Fatalf("parsed an envelope missing attributes: %+v", env)
		}
		for _, c := range []schema.Class{schema.ClassEvent, schema.ClassState} {
			if d, err := (events.Validator{Class: c}).Decode(rec); err == nil {
				if _, err := schema.Encode(d.Message); err != nil {
					t.Fatalf("accepted %s that does not encode back: %v", env.Type, err)
				}
			}
		}
	})
}

// fuzzSeeds are the seed inputs: every example of the matching class,
// valid and with one thing wrong.
func fuzzSeeds(t testing.TB) map[string][][]any {
	s := fuzzSigner(t)
	seeds := map[string][][]any{}
	for _, spec := range schema.Specs() {
		m := example(t, spec.Type)
		body, err := schema.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		id := map[schema.Class]string{schema.ClassCommand: "cmd-0001", schema.ClassRequest: "req-0001"}[spec.Class]
		switch c := m.(type) {
		case schema.Command:
			id = c.Header().CommandID
		case schema.Request:
			id = c.Requested().RequestID
		}
		switch spec.Class {
		case schema.ClassCommand, schema.ClassRequest:
			target := map[schema.Class]string{schema.ClassCommand: "FuzzCommandVerify", schema.ClassRequest: "FuzzRequestVerify"}[spec.Class]
			seeds[target] = append(seeds[target],
				[]any{m.PartitionKey(), id, spec.Type, body, true, ""},
				[]any{m.PartitionKey(), id, spec.Type, body, false, base64Sig(s.Sign(spec.Type, body[1:]))},
				[]any{m.PartitionKey(), id, strings.Replace(spec.Type, ".v1", ".v2", 1), body, true, ""},
				[]any{m.PartitionKey(), id, spec.Type, stale(body), true, ""},
			)
		case schema.ClassEvent:
			other := base64Sig(fuzzNodes(t)["node-18"].Sign(spec.Type, body))
			seeds["FuzzEventVerifier"] = append(seeds["FuzzEventVerifier"],
				[]any{m.PartitionKey(), m.PartitionKey(), spec.Type, body, true, ""},
				[]any{m.PartitionKey(), "node-18", spec.Type, body, true, ""},
				[]any{m.PartitionKey(), m.PartitionKey(), spec.Type, body, false, other},
				[]any{m.PartitionKey(), "", spec.Type, body, false, ""},
			)
			fallthrough
		default:
			h := fmt.Sprintf("ce_id=e-1\nce_type=%s\nce_source=fuzz\nce_specversion=1.0\nce_time=2026-11-26T10:00:00Z\ncontent-type=application/json\npartitionkey=%s",
				spec.Type, m.PartitionKey())
			seeds["FuzzEnvelope"] = append(seeds["FuzzEnvelope"],
				[]any{m.PartitionKey(), h, body},
				[]any{m.PartitionKey(), strings.Replace(h, "1.0", "0.3", 1), body},
				[]any{m.PartitionKey(), h + "\nce_keyid=x", body})
		}
	}
	return seeds
}

// stale makes a signed body too old: a command from an epoch below the
// highest seen, a request from the day before.
func stale(body []byte) []byte {
	body = bytes.Replace(body, []byte(`"epoch":3`), []byte(`"epoch":1`), 1)
	return bytes.Replace(body, []byte(`"requested_at":"2026-11-26T`), []byte(`"requested_at":"2026-11-25T`), 1)
}

// TestFuzzSeeds keeps testdata/fuzz in step with the examples: each seed
// file must be what fuzzSeeds makes (rewrite with -update).
func TestFuzzSeeds(t *testing.T) {
	for target, inputs := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			_ = os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, in := range inputs {
			var b strings.Builder
			b.WriteString("go test fuzz v1\n")
			for _, v := range in {
				switch v := v.(type) {
				case []byte:
					fmt.Fprintf(&b, "[]byte(%q)\n", v)
				case string:
					fmt.Fprintf(&b, "string(%q)\n", v)
				case bool:
					fmt.Fprintf(&b, "bool(%v)\n", v)
				}
			}
			golden(t, filepath.Join("fuzz", target, fmt.Sprintf("seed-%02d", i)), []byte(b.String()))
		}
	}
}

// TestFuzzSeedsReachAcceptance checks that the seeds exercise the whole
// path: each type's first seed is accepted, the altered ones are not.
func TestFuzzSeedsReachAcceptance(t *testing.T) {
	signers := map[string]*events.Signer{"FuzzCommandVerify": fuzzSigner(t), "FuzzRequestVerify": fuzzOperator(t)}
	for target, run := range map[string]func(*testing.T, *events.Signer, *events.Keyring, string, string, string, []byte, bool, string) bool{
		"FuzzCommandVerify": fuzzCommand, "FuzzRequestVerify": fuzzRequest,
	} {
		s := signers[target]
		keys := keyringOf(t, s)
		for i, in := range fuzzSeeds(t)[target] {
			got := run(t, s, keys, in[0].(string), in[1].(string), in[2].(string), in[3].([]byte), in[4].(bool), in[5].(string))
			if want := i%4 == 0; got != want {
				t.Errorf("%s seed %d: accepted %v, want %v", target, i, got, want)
			}
		}
	}
	nodes := fuzzNodes(t)
	nodeKeys := keyringOf(t, nodes["node-17"], nodes["node-18"])
	for i, in := range fuzzSeeds(t)["FuzzEventVerifier"] {
		got := fuzzEvent(t, nodes, nodeKeys, in[0].(string), in[1].(string), in[2].(string), in[3].([]byte), in[4].(bool), in[5].(string))
		if want := i%4 == 0; got != want {
			t.Errorf("FuzzEventVerifier seed %d: accepted %v, want %v", i, got, want)
		}
	}
}
