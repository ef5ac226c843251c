package events

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// The CloudEvents 1.0 binary-mode headers (Kafka protocol binding) and
// regshift's signature extension attributes.
const (
	HeaderID           = "ce_id"
	HeaderType         = "ce_type"
	HeaderSource       = "ce_source"
	HeaderSpecVersion  = "ce_specversion"
	HeaderTime         = "ce_time"
	HeaderContentType  = "content-type"
	HeaderPartitionKey = "partitionkey"
	HeaderKeyID        = "ce_keyid"     // extension: the id of the signing key
	HeaderSignature    = "ce_signature" // extension: base64 (standard, padded) Ed25519 signature
)

// SpecVersion and ContentType are the only values accepted.
const (
	SpecVersion = "1.0"
	ContentType = "application/json"
)

// Envelope is a record's CloudEvents attributes and its body, as carried in
// Kafka. Data is the exact body bytes, the ones the signature covers.
type Envelope struct {
	ID           string
	Type         string
	Source       string
	Time         time.Time
	PartitionKey string
	KeyID        string // empty when unsigned
	Signature    []byte // empty when unsigned
	Data         []byte
}

// Message returns the record for topic, keyed by the partition key.
func (e Envelope) Message(topic string) kafka.Message {
	h := []kafka.Header{
		{Key: HeaderID, Value: []byte(e.ID)},
		{Key: HeaderType, Value: []byte(e.Type)},
		{Key: HeaderSource, Value: []byte(e.Source)},
		{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
		{Key: HeaderContentType, Value: []byte(ContentType)},
		{Key: HeaderPartitionKey, Value: []byte(e.PartitionKey)},
	}
	if e.KeyID != "" {
		h = append(h,
			kafka.Header{Key: HeaderKeyID, Value: []byte(e.KeyID)},
			kafka.Header{Key: HeaderSignature, Value: []byte(encodeSig(e.Signature))})
	}
	return kafka.Message{Topic: topic, Key: []byte(e.PartitionKey), Value: e.Data, Headers: h}
}

// header returns the last value of a header (a later header overrides).
func header(m kafka.Message, key string) (string, bool) {
	v, ok := "", false
	for _, h := range m.Headers {
		if h.Key == key {
			v, ok = string(h.Value), true
		}
	}
	return v, ok
}

// ParseEnvelope reads a record's CloudEvents attributes. It refuses a
// record missing a required attribute, with a spec version other than 1.0,
// a content type other than application/json or a malformed time. It does
// not look at the type or the body.
func ParseEnvelope(m kafka.Message) (Envelope, error) {
	var e Envelope
	attrs := map[string]*string{HeaderID: &e.ID, HeaderType: &e.Type, HeaderSource: &e.Source, HeaderPartitionKey: &e.PartitionKey}
	for _, k := range []string{HeaderID, HeaderType, HeaderSource, HeaderSpecVersion, HeaderTime, HeaderContentType, HeaderPartitionKey} {
		v, ok := header(m, k)
		if !ok || v == "" {
			return Envelope{}, reject(ReasonMissingAttribute, "header %s missing", k)
		}
		if p := attrs[k]; p != nil {
			*p = v
		}
	}
	if v, _ := header(m, HeaderSpecVersion); v != SpecVersion {
		return Envelope{}, reject(ReasonBadSpecVersion, "ce_specversion %q, want %q", v, SpecVersion)
	}
	if v, _ := header(m, HeaderContentType); v != ContentType {
		return Envelope{}, reject(ReasonBadContentType, "content-type %q, want %q", v, ContentType)
	}
	ts, _ := header(m, HeaderTime)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Envelope{}, reject(ReasonBadTime, "ce_time %q: %v", ts, err)
	}
	e.Time = t
	kid, hasKid := header(m, HeaderKeyID)
	sig, hasSig := header(m, HeaderSignature)
	if hasKid != hasSig || (hasKid && (kid == "" || sig == "")) {
		return Envelope{}, reject(ReasonMissingAttribute, "ce_keyid and ce_signature must come together")
	}
	if hasSig {
		if e.Signature, err = decodeSig(sig); err != nil {
			return Envelope{}, reject(ReasonBadSignature, "ce_signature: %v", err)
		}
		e.KeyID = kid
	}
	e.Data = m.Value
	return e, nil
}
