package events_test

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestStateVerifierReasons: a state record is trusted only when a key of
// the coordinators' keyring signed exactly its type and body.
func TestStateVerifierReasons(t *testing.T) {
	coord, stranger := newSigner(t, "coord-1"), newSigner(t, "stranger")
	revoked := newSigner(t, "coord-0")
	keys := keyringOf(t, coord, revoked)
	keys.Revoke(revoked.KeyID)
	v, err := events.NewStateVerifier(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{schema.TypeRolloutRecord, schema.TypeNodeRecord, schema.TypeEpochRecord} {
		signed := func(s *events.Signer) kafka.Message { return encode(t, encoder(topics, s), example(t, typ)) }
		for _, tc := range []struct {
			name string
			rec  kafka.Message
			want events.Reason // "" = accepted
		}{
			{name: "signed by a coordinator", rec: signed(coord)},
			{name: "unsigned", rec: signed(nil), want: events.ReasonUnsigned},
			{name: "signed by a key not in the keyring", rec: signed(stranger), want: events.ReasonUnknownKey},
			{name: "signed by a revoked coordinator key", rec: signed(revoked), want: events.ReasonRevokedKey},
			{name: "another key under the coordinator's key id", rec: setHeader(signed(stranger), events.HeaderKeyID, coord.KeyID),
				want: events.ReasonBadSignature},
			{name: "body changed after signing", rec: func() kafka.Message {
				rec := signed(coord)
				rec.Value = append([]byte(" "), rec.Value...)
				return rec
			}(), want: events.ReasonBadSignature},
			{name: "signed as another type", rec: setHeader(signed(coord), events.HeaderType, otherState(typ)), want: events.ReasonBadSignature},
			{name: "an event on the state topic", rec: encode(t, encoder(topics, coord), example(t, schema.TypeAck)), want: events.ReasonWrongClass},
		} {
			t.Run(typ+"/"+tc.name, func(t *testing.T) {
				d, err := v.Decode(tc.rec)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					if d.Message.MessageType() != typ {
						t.Fatalf("decoded a %s", d.Message.MessageType())
					}
					return
				}
				if !isReason(err, tc.want) {
					t.Fatalf("Decode = %v, want reason %q", err, tc.want)
				}
			})
		}
	}
	if _, err := events.NewStateVerifier(nil); err == nil {
		t.Fatal("a verifier without a keyring")
	}
}

func otherState(typ string) string {
	if typ == schema.TypeEpochRecord {
		return schema.TypeNodeRecord
	}
	return schema.TypeEpochRecord
}
