package events

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// StateLog reads a one-partition (compacted) topic from its start: the
// coordinator's durable record, replayed by a new leader and followed while
// it leads.
type StateLog struct {
	Brokers  []string
	Topic    string
	Security Security
	// Decoder verifies and decodes each record.
	Decoder Decoder
	// Types, when set, are the only record types (ce_type) decoded and
	// visited; the others are passed over unread — a leader following its
	// own writes for an epoch claim reads nothing else.
	Types []string
}

// wants reports whether a record's type is to be decoded. A tombstone (a
// null value: the key's earlier records are deleted) never is: it carries
// nothing to decode, and what it deleted was written to expire.
func (l StateLog) wants(rec kafka.Message) bool {
	if isTombstone(rec) {
		return false
	}
	if len(l.Types) == 0 {
		return true
	}
	typ, ok := header(rec, HeaderType)          // the envelope's own reading: a later header wins
	return !ok || slices.Contains(l.Types, typ) // no type: decode it and let the decoder say what is wrong
}

// StateVisit is called with each record's offset and its decoded delivery,
// or the error that made it unreadable (the record is skipped).
type StateVisit func(offset int64, d Delivery, err error)

// Replay reads the log from its start to its current end, calling visit for
// each record, and returns the end: the offset a Follow continues from.
func (l StateLog) Replay(ctx context.Context, visit StateVisit) (int64, error) {
	var end int64
	// Right after the topic was created its leader may not be known yet:
	// retry for a while before giving up.
	for attempt := 0; ; attempt++ {
		conn, err := l.Security.dialer().DialLeader(ctx, "tcp", l.Brokers[0], l.Topic, 0)
		if err == nil {
			end, err = conn.ReadLastOffset()
			_ = conn.Close()
		}
		if err == nil {
			break
		}
		if attempt == 50 || ctx.Err() != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if end == 0 {
		return 0, nil
	}
	r := l.reader()
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return 0, err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rec, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("events: read %s at offset %d of %d: %w", l.Topic, r.Offset(), end, err)
		}
		if l.wants(rec) {
			d, err := l.Decoder.Decode(rec)
			visit(rec.Offset, d, err)
		}
		if rec.Offset+1 >= end {
			return end, nil
		}
	}
}

// Follow reads the records from offset from on, calling visit for each,
// until ctx ends (it returns nil) or visit returns an error (it returns
// that error).
func (l StateLog) Follow(ctx context.Context, from int64, visit func(offset int64, d Delivery, err error) error) error {
	r := l.reader()
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	for {
		rec, err := r.ReadMessage(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond): // the reader reconnects by itself
			}
			continue
		}
		if !l.wants(rec) {
			continue
		}
		d, err := l.Decoder.Decode(rec)
		if err := visit(rec.Offset, d, err); err != nil {
			return err
		}
	}
}

func (l StateLog) reader() *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{Brokers: l.Brokers, Topic: l.Topic, Partition: 0, MaxWait: 250 * time.Millisecond,
		MaxBytes: maxFetchBytes, Dialer: l.Security.dialer()})
}

// isTombstone reports whether rec deletes its key: no value and no headers.
func isTombstone(rec kafka.Message) bool { return rec.Value == nil && len(rec.Headers) == 0 }

// Delete publishes a tombstone for each key of a compacted topic: once the
// log is compacted, the key's records are gone. StateLog passes tombstones
// over.
func (p *Producer) Delete(ctx context.Context, topic string, keys ...string) error {
	msgs := make([]kafka.Message, len(keys))
	for i, k := range keys {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte(k)}
	}
	return p.Publish(ctx, msgs...)
}
