package events

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// Send encodes messages with enc and publishes them in one Publish (see
// Publish for retries), returning the bytes of keys and values written.
// Nothing is published when one fails to encode.
func (p *Producer) Send(ctx context.Context, enc *Encoder, ms ...schema.Message) (int, error) {
	recs := make([]kafka.Message, 0, len(ms))
	size := 0
	for _, m := range ms {
		rec, err := enc.Encode(m)
		if err != nil {
			return 0, err
		}
		size += len(rec.Key) + len(rec.Value)
		recs = append(recs, rec)
	}
	if err := p.Publish(ctx, recs...); err != nil {
		return 0, err
	}
	return size, nil
}
