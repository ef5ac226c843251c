package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

var topics = events.NewTopics("test.")

// commandCase builds one record from the example Install command, signed by
// the trusted coordinator key unless the case says otherwise.
type commandCase struct {
	name   string
	build  func(t *testing.T, k *fixture) kafka.Message
	replay func(r *events.Replay)
	want   events.Reason // "" = accepted
}

type fixture struct {
	coord, stranger, revoked *events.Signer
	keys                     *events.Keyring
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{coord: newSigner(t, "coord-1"), stranger: newSigner(t, "stranger"), revoked: newSigner(t, "coord-0")}
	f.keys = keyringOf(t, f.coord, f.revoked)
	f.keys.Revoke("coord-0")
	return f
}

func install(t *testing.T, edit func(c *schema.Install)) *schema.Install {
	c := example(t, schema.TypeInstall).(*schema.Install)
	if edit != nil {
		edit(c)
	}
	return c
}

func signedInstall(t *testing.T, s *events.Signer, edit func(c *schema.Install)) kafka.Message {
	return encode(t, encoder(topics, s), install(t, edit))
}

// resign replaces the body of rec and signs it again with s as type typ.
func resign(rec kafka.Message, s *events.Signer, typ string, body []byte) kafka.Message {
	rec.Value = body
	return setHeader(rec, events.HeaderSignature, base64Sig(s.Sign(typ, body)))
}

func TestCommandVerifierReasons(t *testing.T) {
	cases := []commandCase{
		{name: "valid", build: func(t *testing.T, f *fixture) kafka.Message { return signedInstall(t, f.coord, nil) }},
		{name: "expiring within skew", build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, func(c *schema.Install) { c.ExpiresAt = now.Add(-10 * time.Second) })
		}},
		{name: "epoch equal to highest", replay: seen(3, "cmd-x"), build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, nil)
		}},
	}
	for _, h := range []string{events.HeaderID, events.HeaderType, events.HeaderSource, events.HeaderSpecVersion,
		events.HeaderTime, events.HeaderContentType, events.HeaderPartitionKey} {
		cases = append(cases, commandCase{name: "missing " + h, want: events.ReasonMissingAttribute,
			build: func(t *testing.T, f *fixture) kafka.Message { return dropHeader(signedInstall(t, f.coord, nil), h) }})
		cases = append(cases, commandCase{name: "empty " + h, want: events.ReasonMissingAttribute,
			build: func(t *testing.T, f *fixture) kafka.Message { return setHeader(signedInstall(t, f.coord, nil), h, "") }})
	}
	cases = append(cases, []commandCase{
		{name: "key id without signature", want: events.ReasonMissingAttribute, build: func(t *testing.T, f *fixture) kafka.Message {
			return dropHeader(signedInstall(t, f.coord, nil), events.HeaderSignature)
		}},
		{name: "spec version 0.3", want: events.ReasonBadSpecVersion, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderSpecVersion, "0.3")
		}},
		{name: "content type text", want: events.ReasonBadContentType, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderContentType, "text/plain")
		}},
		{name: "time not RFC 3339", want: events.ReasonBadTime, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderTime, "Thursday")
		}},
		{name: "unknown type", want: events.ReasonUnknownType, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderType, "regshift.command.reboot.v1")
		}},
		{name: "version 2", want: events.ReasonUnsupportedVersion, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderType, "regshift.command.install.v2")
		}},
		{name: "request on the commands topic", want: events.ReasonWrongClass, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderType, schema.TypePause)
		}},
		{name: "record key differs from partitionkey", want: events.ReasonHeaderMismatch, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderPartitionKey, "node-99")
		}},
		{name: "unsigned", want: events.ReasonUnsigned, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, nil, nil)
		}},
		{name: "unknown key", want: events.ReasonUnknownKey, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.stranger, nil)
		}},
		{name: "revoked key", want: events.ReasonRevokedKey, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.revoked, nil)
		}},
		{name: "stranger claiming the coordinator's key id", want: events.ReasonBadSignature, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.stranger, nil), events.HeaderKeyID, "coord-1")
		}},
		{name: "body changed after signing", want: events.ReasonBadSignature, build: func(t *testing.T, f *fixture) kafka.Message {
			rec := signedInstall(t, f.coord, nil)
			rec.Value = []byte(string(rec.Value[:len(rec.Value)-2]) + " }")
			return rec
		}},
		{name: "signed as another type", want: events.ReasonBadSignature, build: func(t *testing.T, f *fixture) kafka.Message {
			rec := signedInstall(t, f.coord, nil)
			return resign(rec, f.coord, schema.TypeActivate, rec.Value)
		}},
		{name: "signature not base64", want: events.ReasonBadSignature, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderSignature, "%%%")
		}},
		{name: "signature truncated", want: events.ReasonBadSignature, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderSignature, "AAAA")
		}},
		{name: "signed body breaking the schema", want: events.ReasonInvalidBody, build: func(t *testing.T, f *fixture) kafka.Message {
			rec := signedInstall(t, f.coord, nil)
			var m map[string]any
			_ = json.Unmarshal(rec.Value, &m)
			m["package_digest"] = "sha1:00"
			b, _ := json.Marshal(m)
			return resign(rec, f.coord, schema.TypeInstall, b)
		}},
		{name: "for another node", want: events.ReasonWrongNode, build: func(t *testing.T, f *fixture) kafka.Message {
			rec := signedInstall(t, f.coord, func(c *schema.Install) { c.NodeID = "node-18" })
			rec.Key = []byte(node)
			return setHeader(rec, events.HeaderPartitionKey, node)
		}},
		{name: "ce_id differs from command id", want: events.ReasonHeaderMismatch, build: func(t *testing.T, f *fixture) kafka.Message {
			return setHeader(signedInstall(t, f.coord, nil), events.HeaderID, "cmd-9999")
		}},
		{name: "issued in the future", want: events.ReasonNotYetValid, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, func(c *schema.Install) { c.IssuedAt = now.Add(time.Minute) })
		}},
		{name: "expired", want: events.ReasonExpired, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, func(c *schema.Install) { c.ExpiresAt = now.Add(-time.Minute) })
		}},
		{name: "expires before issued", want: events.ReasonExpired, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, func(c *schema.Install) { c.ExpiresAt = c.IssuedAt })
		}},
		{name: "stale epoch", want: events.ReasonStaleEpoch, replay: seen(4), build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, nil)
		}},
		{name: "already applied", want: events.ReasonDuplicate, replay: seen(3, "cmd-0001"), build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, nil)
		}},
		// Several faults: the first check in the documented order wins.
		{name: "revoked and expired", want: events.ReasonRevokedKey, build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.revoked, func(c *schema.Install) { c.ExpiresAt = now.Add(-time.Hour) })
		}},
		{name: "expired and stale", want: events.ReasonExpired, replay: seen(9, "cmd-0001"), build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, func(c *schema.Install) { c.ExpiresAt = now.Add(-time.Hour) })
		}},
		{name: "stale and applied", want: events.ReasonStaleEpoch, replay: seen(9, "cmd-0001"), build: func(t *testing.T, f *fixture) kafka.Message {
			return signedInstall(t, f.coord, nil)
		}},
	}...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			replay := events.NewReplay()
			if tc.replay != nil {
				tc.replay(replay)
			}
			cfg := events.DefaultCommandVerifierConfig(node)
			cfg.Now = clock
			v, err := events.NewCommandVerifier(cfg, f.keys, replay)
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(tc.build(t, f))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected a valid command: %v", err)
				}
				if c, ok := d.Message.(*schema.Install); !ok || c.CommandID != "cmd-0001" || d.Envelope.KeyID != "coord-1" {
					t.Fatalf("delivery = %+v", d)
				}
				return
			}
			got, ok := events.ReasonOf(err)
			if !ok || got != tc.want {
				t.Fatalf("Decode = %v (reason %q), want reason %q", err, got, tc.want)
			}
			// Only a command whose signature and body passed carries its
			// header out, for the agent to answer.
			var refused *events.RefusedCommand
			want := signedAndValid[got] && tc.name != "record key differs from partitionkey" // that mismatch is the envelope's
			if errors.As(err, &refused) != want {
				t.Fatalf("Decode = %v: a RefusedCommand %v, want %v", err, !want, want)
			}
			if refused != nil && refused.Header.CommandID != "cmd-0001" {
				t.Fatalf("refused header %+v", refused.Header)
			}
		})
	}
}

// signedAndValid are the reasons of checks after the signature and the schema.
var signedAndValid = map[events.Reason]bool{events.ReasonWrongNode: true, events.ReasonHeaderMismatch: true,
	events.ReasonNotYetValid: true, events.ReasonExpired: true, events.ReasonStaleEpoch: true, events.ReasonDuplicate: true}

func seen(epoch uint64, ids ...string) func(r *events.Replay) {
	return func(r *events.Replay) {
		r.Record(schema.CommandHeader{CommandID: "cmd-seed", Epoch: epoch})
		for _, id := range ids {
			r.Record(schema.CommandHeader{CommandID: id, Epoch: epoch})
		}
	}
}

func TestCommandVerifierSkipsOtherNodes(t *testing.T) {
	f := newFixture(t)
	cfg := events.DefaultCommandVerifierConfig("node-18")
	cfg.Now = clock
	v, err := events.NewCommandVerifier(cfg, f.keys, events.NewReplay())
	if err != nil {
		t.Fatal(err)
	}
	// Not even a valid record: records keyed to other nodes are not looked at.
	if _, err := v.Decode(kafka.Message{Key: []byte(node), Value: []byte("garbage")}); !errors.Is(err, events.ErrSkip) {
		t.Fatalf("Decode = %v, want ErrSkip", err)
	}
}

func TestRequestVerifierReasons(t *testing.T) {
	operator, stranger := newSigner(t, "alice"), newSigner(t, "mallory")
	pause := func() schema.Message { return example(t, schema.TypePause) }
	for _, tc := range []struct {
		name          string
		allowUnsigned bool
		rec           func() kafka.Message
		want          events.Reason
	}{
		{name: "signed", rec: func() kafka.Message { return encode(t, encoder(topics, operator), pause()) }},
		{name: "unsigned refused", want: events.ReasonUnsigned, rec: func() kafka.Message { return encode(t, encoder(topics, nil), pause()) }},
		{name: "unsigned allowed", allowUnsigned: true, rec: func() kafka.Message { return encode(t, encoder(topics, nil), pause()) }},
		{name: "unknown key even when unsigned is allowed", allowUnsigned: true, want: events.ReasonUnknownKey,
			rec: func() kafka.Message { return encode(t, encoder(topics, stranger), pause()) }},
		{name: "forged signature even when unsigned is allowed", allowUnsigned: true, want: events.ReasonBadSignature,
			rec: func() kafka.Message {
				return setHeader(encode(t, encoder(topics, stranger), pause()), events.HeaderKeyID, "alice")
			}},
		{name: "command on the requests topic", want: events.ReasonWrongClass,
			rec: func() kafka.Message { return encode(t, encoder(topics, operator), example(t, schema.TypeInstall)) }},
		{name: "too old", want: events.ReasonExpired, rec: func() kafka.Message {
			p := pause().(*schema.Pause)
			p.RequestedAt = now.Add(-time.Hour)
			return encode(t, encoder(topics, operator), p)
		}},
		{name: "from the future", want: events.ReasonNotYetValid, rec: func() kafka.Message {
			p := pause().(*schema.Pause)
			p.RequestedAt = now.Add(time.Hour)
			return encode(t, encoder(topics, operator), p)
		}},
		{name: "ce_id differs from request id", want: events.ReasonHeaderMismatch, rec: func() kafka.Message {
			return setHeader(encode(t, encoder(topics, operator), pause()), events.HeaderID, "req-other")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := events.DefaultRequestVerifierConfig()
			cfg.AllowUnsigned, cfg.Now = tc.allowUnsigned, clock
			v, err := events.NewRequestVerifier(cfg, keyringOf(t, operator))
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(tc.rec())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p, ok := d.Message.(*schema.Pause); !ok || p.RequestID != "req-0005" {
					t.Fatalf("delivery = %+v", d.Message)
				}
				return
			}
			if got, _ := events.ReasonOf(err); got != tc.want {
				t.Fatalf("Decode = %v, want reason %q", err, tc.want)
			}
		})
	}
}

func TestValidator(t *testing.T) {
	enc := encoder(topics, nil)
	ack := encode(t, enc, example(t, schema.TypeAck))
	if ack.Topic != topics.Events || string(ack.Key) != node {
		t.Fatalf("ack record topic %q key %q", ack.Topic, ack.Key)
	}
	d, err := events.Validator{Class: schema.ClassEvent}.Decode(ack)
	if err != nil {
		t.Fatal(err)
	}
	if a := d.Message.(*schema.Ack); a.Outcome != schema.AckFailed {
		t.Fatalf("ack = %+v", a)
	}
	if _, err := (events.Validator{Class: schema.ClassState}).Decode(ack); !isReason(err, events.ReasonWrongClass) {
		t.Fatalf("an event on the state topic: %v", err)
	}
	bad := ack
	bad.Value = []byte(`{"node_id":"node-17"}`)
	if _, err := (events.Validator{Class: schema.ClassEvent}).Decode(bad); !isReason(err, events.ReasonInvalidBody) {
		t.Fatalf("an ack without its fields: %v", err)
	}
}

func isReason(err error, r events.Reason) bool {
	got, ok := events.ReasonOf(err)
	return ok && got == r
}

// TestRequestVerifierBindsRequesterAndRole: a signed request's
// requested_by must be its key id, and its kind must be within the key's
// role — observe may ask nothing, operate pause, resume and approve, admin
// everything.
func TestRequestVerifierBindsRequesterAndRole(t *testing.T) {
	alice, bob := newSigner(t, "alice"), newSigner(t, "bob")
	keys := keyringOf(t, alice, bob)
	v, err := events.NewRequestVerifier(events.RequestVerifierConfig{MaxAge: 15 * time.Minute, MaxSkew: 30 * time.Second, Now: clock}, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("requested_by another key", func(t *testing.T) {
		_, err := v.Decode(encode(t, encoder(topics, bob), example(t, schema.TypePause))) // says alice, signed by bob
		if !isReason(err, events.ReasonRequesterMismatch) {
			t.Fatalf("alice's pause signed with bob's key: %v, want %s", err, events.ReasonRequesterMismatch)
		}
	})

	kinds := map[string]schema.RequestKind{schema.TypeCreateRollout: schema.RequestCreate, schema.TypePause: schema.RequestPause,
		schema.TypeResume: schema.RequestResume, schema.TypeApprove: schema.RequestApprove, schema.TypeAbort: schema.RequestAbort,
		schema.TypeFinalize: schema.RequestFinalize}
	allowed := map[events.Role][]schema.RequestKind{
		events.RoleObserve: nil,
		events.RoleOperate: {schema.RequestPause, schema.RequestResume, schema.RequestApprove},
		events.RoleAdmin:   {schema.RequestCreate, schema.RequestPause, schema.RequestResume, schema.RequestApprove, schema.RequestAbort, schema.RequestFinalize},
	}
	for role, may := range allowed {
		if err := keys.Grant("alice", role); err != nil {
			t.Fatal(err)
		}
		for typ, kind := range kinds {
			t.Run(string(role)+" "+string(kind), func(t *testing.T) {
				_, err := v.Decode(encode(t, encoder(topics, alice), example(t, typ)))
				if slices.Contains(may, kind) {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
				} else if !isReason(err, events.ReasonForbidden) {
					t.Fatalf("%v, want %s", err, events.ReasonForbidden)
				}
			})
		}
	}
	t.Run("a key no role names is observe", func(t *testing.T) {
		k := events.NewKeyring()
		if err := k.Add("alice", alice.Public()); err != nil {
			t.Fatal(err)
		}
		if r := k.Role("alice"); r != events.RoleObserve {
			t.Fatalf("role %q", r)
		}
	})
}
