package benchfleet

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// heapSampler records the highest HeapInuse of the process, sampled every
// 100 ms until stopped.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			h.sample()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > h.peak.Load() {
		h.peak.Store(ms.HeapInuse)
	}
}

// restart makes base the peak so far.
func (h *heapSampler) restart(base uint64) { h.peak.Store(base) }

// Stop ends the sampling and returns the peak.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// heapInuse is HeapInuse after a collection: the baseline.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// stateCounter sums the sizes (key, value and headers) of the records
// written to a one-partition topic from an offset on, by the millisecond
// of their ce_time, and hands each node record to rounds.
type stateCounter struct {
	brokers []string
	topic   string
	rounds  *rounds

	bytes, records atomic.Int64
	next           atomic.Int64 // offset of the next record to count
	spans          []stateSpan  // written by the reader only; read once it stopped
	cancel         context.CancelFunc
	done           chan struct{}
}

// stateSpan is what was written in one millisecond (by ce_time): the
// records of one persist share a few milliseconds, so a run has far fewer
// spans than records.
type stateSpan struct {
	ms             int64 // Unix milliseconds
	records, bytes int64
}

// countState starts counting the records topic gets from now on.
func countState(ctx context.Context, brokers []string, topic string, rounds *rounds) (*stateCounter, error) {
	from, err := endOffset(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &stateCounter{brokers: brokers, topic: topic, rounds: rounds, cancel: cancel, done: make(chan struct{})}
	c.next.Store(from)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 64 << 20,
		MaxWait: 250 * time.Millisecond})
	if err := r.SetOffset(from); err != nil {
		cancel()
		_ = r.Close()
		return nil, err
	}
	go func() {
		defer close(c.done)
		defer r.Close()
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond) // the reader reconnects by itself
				continue
			}
			size := len(m.Key) + len(m.Value)
			for _, h := range m.Headers {
				size += len(h.Key) + len(h.Value)
			}
			c.bytes.Add(int64(size))
			c.records.Add(1)
			if env, err := events.ParseEnvelope(m); err == nil {
				c.span(env.Time, int64(size))
				if env.Type == schema.TypeNodeRecord {
					c.rounds.stateRecord(env.Data, env.Time)
				}
			}
			c.next.Store(m.Offset + 1)
		}
	}()
	return c, nil
}

func (c *stateCounter) span(at time.Time, size int64) {
	ms := at.UnixMilli()
	if n := len(c.spans); n > 0 && c.spans[n-1].ms == ms {
		c.spans[n-1].records++
		c.spans[n-1].bytes += size
		return
	}
	c.spans = append(c.spans, stateSpan{ms: ms, records: 1, bytes: size})
}

// within sums the records stamped from..to (by the millisecond); call it
// once Stop returned.
func (c *stateCounter) within(from, to time.Time) (records, bytes int64) {
	for _, s := range c.spans {
		if s.ms >= from.UnixMilli() && s.ms <= to.UnixMilli() {
			records, bytes = records+s.records, bytes+s.bytes
		}
	}
	return records, bytes
}

// Stop waits, up to a minute or until ctx ends (an interrupted run), until
// every record written so far is counted, then stops and returns the sums.
func (c *stateCounter) Stop(ctx context.Context) (bytes, records int64, err error) {
	defer func() { c.cancel(); <-c.done }()
	end, err := endOffset(ctx, c.brokers, c.topic)
	if err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(time.Minute)
	for c.next.Load() < end {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return c.bytes.Load(), c.records.Load(), fmt.Errorf("state topic: counted up to offset %d of %d", c.next.Load(), end)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c.bytes.Load(), c.records.Load(), nil
}

// endOffset is the offset the next record of partition 0 of topic gets.
func endOffset(ctx context.Context, brokers []string, topic string) (int64, error) {
	return endOffsetOf(ctx, brokers, topic, 0)
}

// endOffsetOf is the offset the next record of a partition of topic gets.
func endOffsetOf(ctx context.Context, brokers []string, topic string, partition int) (int64, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, partition)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", topic, err)
	}
	defer conn.Close()
	return conn.ReadLastOffset()
}
