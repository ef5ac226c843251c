package events

import (
	"context"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// Headers added to a dead-letter record. The record keeps the original
// key, value and headers, so it can be inspected and replayed as it was.
const (
	HeaderDLQReason    = "regshift_dlq_reason"    // a Reason
	HeaderDLQError     = "regshift_dlq_error"     // the error text, at most schema.MaxDetail bytes of UTF-8
	HeaderDLQTopic     = "regshift_dlq_topic"     // where the record was read
	HeaderDLQPartition = "regshift_dlq_partition" // its partition, decimal
	HeaderDLQOffset    = "regshift_dlq_offset"    // its offset, decimal
	HeaderDLQConsumer  = "regshift_dlq_consumer"  // the consumer that refused it (group id or node)
	// HeaderDLQDropped marks a dead letter too large to publish whole: it
	// keeps only the regshift_dlq_* headers and a key of at most 1 KiB, and
	// this header holds the record's value size in bytes. The record is in
	// its topic at regshift_dlq_offset for as long as retention keeps it.
	HeaderDLQDropped = "regshift_dlq_dropped"
)

const dlqHeaderPrefix = "regshift_dlq_"

// Publisher publishes records; *Producer is one. Consumers use it for dead letters.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

var _ Publisher = (*Producer)(nil)

// DeadLetter builds the dead-letter record for rec refused for reason.
func DeadLetter(dlqTopic string, rec kafka.Message, reason Reason, err error, consumer string) kafka.Message {
	detail := schema.Truncate(err.Error(), schema.MaxDetail)
	h := make([]kafka.Header, 0, len(rec.Headers)+6)
	for _, x := range rec.Headers {
		if !strings.HasPrefix(x.Key, dlqHeaderPrefix) {
			h = append(h, x)
		}
	}
	h = append(h,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQError, Value: []byte(detail)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(rec.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(rec.Partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		kafka.Header{Key: HeaderDLQConsumer, Value: []byte(consumer)},
	)
	return kafka.Message{Topic: dlqTopic, Key: rec.Key, Value: rec.Value, Headers: h}
}

// withoutRecord returns a dead letter stripped of the record it carries,
// for one the dead-letter topic refused as too large.
func withoutRecord(dl kafka.Message) kafka.Message {
	h := []kafka.Header{{Key: HeaderDLQDropped, Value: []byte(strconv.Itoa(len(dl.Value)))}}
	for _, x := range dl.Headers {
		if strings.HasPrefix(x.Key, dlqHeaderPrefix) && x.Key != HeaderDLQDropped {
			h = append(h, x)
		}
	}
	if len(dl.Key) > 1024 {
		dl.Key = dl.Key[:1024]
	}
	dl.Value, dl.Headers = nil, h
	return dl
}
