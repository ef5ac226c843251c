package events

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// Encoder turns messages into signed (or unsigned) records for their topic.
type Encoder struct {
	Topics Topics
	Source string           // ce_source: who speaks, e.g. "regshift/coordinator/coord-a"
	Signer *Signer          // nil: records go out unsigned
	Now    func() time.Time // nil: time.Now
}

// Encode validates m against its schema, marshals it and wraps it in its
// envelope. A command's ce_id is its command id, a request's its request
// id; other messages get a random id.
func (e *Encoder) Encode(m schema.Message) (kafka.Message, error) {
	if e.Source == "" {
		return kafka.Message{}, errors.New("events: Encoder.Source is empty")
	}
	body, err := schema.Encode(m)
	if err != nil {
		return kafka.Message{}, err
	}
	spec, err := schema.Lookup(m.MessageType())
	if err != nil {
		return kafka.Message{}, err
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	env := Envelope{ID: messageID(m), Type: spec.Type, Source: e.Source, Time: now(), PartitionKey: m.PartitionKey(), Data: body}
	if env.ID == "" {
		env.ID = randomID()
	}
	if e.Signer != nil {
		env.KeyID, env.Signature = e.Signer.KeyID, e.Signer.Sign(env.Type, body)
	}
	return env.Message(e.Topics.For(spec.Class)), nil
}

// messageID is the id a message carries in its body, "" for none.
func messageID(m schema.Message) string {
	switch m := m.(type) {
	case schema.Command:
		return m.Header().CommandID
	case schema.Request:
		return m.Requested().RequestID
	}
	return ""
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// Delivery is a record that passed every check, with its decoded message.
type Delivery struct {
	Record   kafka.Message
	Envelope Envelope
	Message  schema.Message
}

// Decoder turns a record into a Delivery, or fails with a *RejectError
// naming the failed check, or ErrSkip. A group consumer decodes a batch's
// records in several goroutines at once (ConsumerConfig.DecodeWorkers):
// Decode must be safe for concurrent use.
type Decoder interface {
	Decode(rec kafka.Message) (Delivery, error)
}

// open parses the envelope and resolves its type, which must be of class.
func open(rec kafka.Message, class schema.Class) (Envelope, error) {
	env, err := ParseEnvelope(rec)
	if err != nil {
		return Envelope{}, err
	}
	spec, err := schema.Lookup(env.Type)
	switch {
	case errors.Is(err, schema.ErrUnsupportedVersion):
		return Envelope{}, &RejectError{Reason: ReasonUnsupportedVersion, Err: err}
	case err != nil:
		return Envelope{}, &RejectError{Reason: ReasonUnknownType, Err: err}
	case spec.Class != class:
		return Envelope{}, reject(ReasonWrongClass, "%s is a %s, this topic carries %ss", env.Type, spec.Class, class)
	}
	if string(rec.Key) != env.PartitionKey {
		return Envelope{}, reject(ReasonHeaderMismatch, "record key %q differs from partitionkey %q", rec.Key, env.PartitionKey)
	}
	return env, nil
}

// body validates and decodes the envelope's data.
func body(env Envelope) (schema.Message, error) {
	m, err := schema.Decode(env.Type, env.Data)
	if errors.Is(err, schema.ErrInvalid) {
		return nil, &RejectError{Reason: ReasonInvalidBody, Err: err}
	}
	return m, err
}

// agree checks that the unsigned headers say what the body says.
func agree(env Envelope, m schema.Message) error {
	if id := messageID(m); id != "" && id != env.ID {
		return reject(ReasonHeaderMismatch, "ce_id %q differs from the body's id %q", env.ID, id)
	}
	if k := m.PartitionKey(); k != env.PartitionKey {
		return reject(ReasonHeaderMismatch, "partitionkey %q differs from the body's %q", env.PartitionKey, k)
	}
	return nil
}

// checkBody validates and decodes the envelope's data and checks that the
// headers agree with it.
func checkBody(env Envelope) (schema.Message, error) {
	m, err := body(env)
	if err != nil {
		return nil, err
	}
	if err := agree(env, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Validator decodes messages that travel unsigned — agent events in tests
// and tools that read them without the node keys (state records are a
// StateVerifier's) — checking the envelope, the class and the schema. A
// signature, if present, is not looked at.
type Validator struct {
	Class schema.Class
}

// Decode implements Decoder.
func (v Validator) Decode(rec kafka.Message) (Delivery, error) {
	return decodeWith(rec, v.Class, checkBody)
}

// decodeWith opens rec as a message of class and checks it with verify.
func decodeWith(rec kafka.Message, class schema.Class, verify func(Envelope) (schema.Message, error)) (Delivery, error) {
	env, err := open(rec, class)
	if err != nil {
		return Delivery{}, err
	}
	m, err := verify(env)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Record: rec, Envelope: env, Message: m}, nil
}

var _ Decoder = Validator{}

func nowOr(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}

func checkPositive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("events: %s must be positive, is %v", name, d)
	}
	return nil
}
