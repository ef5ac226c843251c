package events

import (
	"errors"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// EventVerifierConfig configures an EventVerifier.
type EventVerifierConfig struct {
	// AllowUnsigned accepts events without a signature. A signed event is
	// verified all the same. Off by default; turn it on only where every
	// writer to the events topic is trusted (a test, a simulated fleet).
	AllowUnsigned bool
}

// EventVerifier is the coordinator's decoder for the events topic: acks,
// health reports and hellos, each signed by the node it speaks for. The
// keyring holds one key per node, under the node's id.
//
// It holds no state of its own and reads the keyring under a read lock, so
// the group consumer decodes a batch with it on every core.
type EventVerifier struct {
	cfg  EventVerifierConfig
	keys *Keyring
}

// NewEventVerifier returns a verifier trusting the node keys in keys.
func NewEventVerifier(cfg EventVerifierConfig, keys *Keyring) (*EventVerifier, error) {
	if keys == nil {
		return nil, errors.New("events: NewEventVerifier needs a keyring")
	}
	return &EventVerifier{cfg: cfg, keys: keys}, nil
}

// Decode implements Decoder.
func (v *EventVerifier) Decode(rec kafka.Message) (Delivery, error) {
	return decodeWith(rec, schema.ClassEvent, func(env Envelope) (schema.Message, error) { return v.Verify(env) })
}

// Verify checks an event envelope, in this order: signed (unless unsigned
// events are allowed and this one is unsigned), by the key of the node the
// event is keyed to (ce_keyid = partitionkey, which is also the record's
// key), a known key not revoked, the signature, the schema, and the body's
// node being that same node. So a verified event's node id is its
// signer's key id: one node's key speaks for that node only.
func (v *EventVerifier) Verify(env Envelope) (schema.Message, error) {
	if env.KeyID != "" || !v.cfg.AllowUnsigned {
		if env.KeyID != "" && env.KeyID != env.PartitionKey {
			return nil, reject(ReasonWrongSigner, "%s %s for node %q is signed by key %q", env.Type, env.ID, env.PartitionKey, env.KeyID)
		}
		if err := verifySignature(v.keys, env); err != nil {
			return nil, err
		}
	}
	return checkBody(env)
}

var _ Decoder = (*EventVerifier)(nil)
