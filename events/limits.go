package events

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// Record size limits: the max.message.bytes Bootstrap gives each topic. A
// broker checks that limit against each record batch it is sent (the
// records of one partition in one produce request, after compression), not
// against each record; the producer keeps its batches of small records
// below the smallest limit (ProducerConfig.BatchBytes) and sends a larger
// record in a batch of its own.
const (
	// DefaultMaxMessageBytes is the limit of the commands, events and state
	// topics, whose records are small (a state record is well under 64 KB).
	DefaultMaxMessageBytes = 1 << 20
	// DefaultRequestMaxMessageBytes is the requests topic's: a
	// create-rollout of 100,000 nodes is about 5.8 MB of JSON.
	DefaultRequestMaxMessageBytes = 16 << 20
	// DeadLetterHeadroom is what the dead-letter topic allows beyond the
	// requests topic: a dead letter carries the record it refuses whole,
	// plus the regshift_dlq_* headers.
	DeadLetterHeadroom = 64 << 10
)

// maxFetchBytes is the largest max.message.bytes Bootstrap sets: a fetch
// of this many bytes takes any record whole.
const maxFetchBytes = DefaultRequestMaxMessageBytes + DeadLetterHeadroom

// ErrRecordTooLarge is matched by every *RecordTooLargeError.
var ErrRecordTooLarge = errors.New("record too large")

// RecordTooLargeError is a record Publish could not send for its size:
// above ProducerConfig.MaxRecordBytes (Limit set, nothing was sent), or
// refused by the broker as larger than its topic's max.message.bytes (Err
// is the broker's answer). It is not retriable.
type RecordTooLargeError struct {
	Index int    // the record's place among those given to Publish
	Topic string // its topic
	Key   string // its key
	Bytes int64  // its size as the producer counts it (key, value, headers, framing)
	Limit int64  // MaxRecordBytes; 0 when the broker refused it
	Err   error  // the broker's answer, when it refused it
}

func (e *RecordTooLargeError) Error() string {
	key := schema.Truncate(e.Key, 256)
	if e.Err != nil {
		return fmt.Sprintf("record %d (topic %s, key %q) of %d bytes: larger than the topic's max.message.bytes: %v", e.Index, e.Topic, key, e.Bytes, e.Err)
	}
	return fmt.Sprintf("record %d (topic %s, key %q) of %d bytes: larger than MaxRecordBytes %d", e.Index, e.Topic, key, e.Bytes, e.Limit)
}

// Is makes errors.Is(err, ErrRecordTooLarge) hold.
func (e *RecordTooLargeError) Is(target error) bool { return target == ErrRecordTooLarge }

func (e *RecordTooLargeError) Unwrap() error { return e.Err }

// recordFraming bounds what kafka-go adds to a record's key, value and
// headers when it sizes it: length fields and the timestamp.
const recordFraming = 64

// recordBytes is a record's size as kafka-go counts it against BatchBytes,
// or a little more: key, value, each header, and their framing.
func recordBytes(m kafka.Message) int64 {
	n := int64(len(m.Key) + len(m.Value) + recordFraming)
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value) + 10)
	}
	return n
}
