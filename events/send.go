package events

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// encodeAlone is the batch size under which Send encodes in the calling
// goroutine: below it, starting workers costs more than it saves.
const encodeAlone = 64

// sendChunk is the most records Send encodes before publishing them: a
// large batch goes out in chunks, so the records in memory at once stay
// bounded whatever the batch (a wave of 100,000 commands is 25 chunks, not
// 50 MB of records), and the first records are on their way while the
// next chunk is encoded.
const sendChunk = 4096

// Send encodes messages with enc and publishes them (see Publish for
// retries), returning the bytes of keys and values written. A batch of up
// to sendChunk messages is one Publish, and nothing of it is published
// when one fails to encode. A larger one goes out in chunks, in order,
// each encoded while the one before it is being published: when a chunk
// fails to encode or publish, the chunks before it are written and the
// error says how many records were. Encoding uses every core (validating
// and signing are most of a record's cost).
func (p *Producer) Send(ctx context.Context, enc *Encoder, ms ...schema.Message) (int, error) {
	if len(ms) <= sendChunk {
		recs, err := encodeAll(enc, ms)
		if err != nil {
			return 0, err
		}
		if err := p.Publish(ctx, recs...); err != nil {
			return 0, err
		}
		return recordsSize(recs), nil
	}
	type chunk struct {
		recs []kafka.Message
		err  error
	}
	chunks := make(chan chunk, 1) // one encoded ahead of the publish
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for lo := 0; lo < len(ms); lo += sendChunk {
			recs, err := encodeAll(enc, ms[lo:min(lo+sendChunk, len(ms))])
			select {
			case chunks <- chunk{recs, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	size, written := 0, 0
	for c := range chunks {
		err := c.err
		if err == nil {
			err = p.Publish(ctx, c.recs...)
		}
		if err != nil {
			return size, fmt.Errorf("%d of %d records written: %w", written, len(ms), err)
		}
		size += recordsSize(c.recs)
		written += len(c.recs)
	}
	return size, nil
}

func recordsSize(recs []kafka.Message) int {
	size := 0
	for _, rec := range recs {
		size += len(rec.Key) + len(rec.Value)
	}
	return size
}

// encodeAll encodes ms in order, in parallel chunks when there are many;
// the error is the first message's that failed.
func encodeAll(enc *Encoder, ms []schema.Message) ([]kafka.Message, error) {
	recs := make([]kafka.Message, len(ms))
	workers := min(runtime.GOMAXPROCS(0), (len(ms)+encodeAlone-1)/encodeAlone)
	if workers <= 1 {
		for i, m := range ms {
			rec, err := enc.Encode(m)
			if err != nil {
				return nil, err
			}
			recs[i] = rec
		}
		return recs, nil
	}
	errs := make([]error, workers)
	chunk := (len(ms) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(ms))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				rec, err := enc.Encode(ms[i])
				if err != nil {
					errs[w] = err
					return
				}
				recs[i] = rec
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}
