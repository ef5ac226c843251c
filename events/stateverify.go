package events

import (
	"errors"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// StateVerifier is the coordinator's decoder for the state topic: a rollout
// head, a node record or an epoch claim is trusted only when a key of the
// coordinators' keyring signed it. State records have no validity window —
// they are the durable record — so unlike a command or a request nothing
// else is checked: the envelope, the key and signature over (type, body),
// the schema and the headers agreeing with the body.
type StateVerifier struct {
	keys *Keyring
}

// NewStateVerifier returns a verifier trusting the coordinator keys in keys.
func NewStateVerifier(keys *Keyring) (*StateVerifier, error) {
	if keys == nil {
		return nil, errors.New("events: NewStateVerifier needs a keyring")
	}
	return &StateVerifier{keys: keys}, nil
}

// Decode implements Decoder.
func (v *StateVerifier) Decode(rec kafka.Message) (Delivery, error) {
	return decodeWith(rec, schema.ClassState, v.Verify)
}

// Verify checks a state envelope: a known key that is not revoked, the
// signature, the schema, the headers agreeing with the body. The error is a
// *RejectError whose Reason names the failed check.
func (v *StateVerifier) Verify(env Envelope) (schema.Message, error) {
	if err := verifySignature(v.keys, env); err != nil {
		return nil, err
	}
	return checkBody(env)
}

var _ Decoder = (*StateVerifier)(nil)
