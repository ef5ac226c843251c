package itest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// collector keeps everything agents publish on the events topic.
type collector struct {
	mu     sync.Mutex
	acks   map[string][]schema.Ack // node/command -> acks in arrival order
	health map[string][]schema.Health
	hello  map[string][]schema.Hello
}

func collect(t testing.TB, brokers []string, sec events.Security, topic string, log *slog.Logger) *collector {
	c := &collector{acks: map[string][]schema.Ack{}, health: map[string][]schema.Health{}, hello: map[string][]schema.Hello{}}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: "itest-collector-" + unique(), Dialer: sec.Dialer(),
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond, ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rec, err := r.ReadMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			d, err := (events.Validator{Class: schema.ClassEvent}).Decode(rec)
			if err != nil {
				log.Error("itest collector: an agent published an invalid event", "key", string(rec.Key), "err", err)
				continue
			}
			c.add(d.Message)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = r.Close()
	})
	return c
}

func (c *collector) add(m schema.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := m.(type) {
	case *schema.Ack:
		k := m.NodeID + "/" + m.CommandID
		c.acks[k] = append(c.acks[k], *m)
	case *schema.Health:
		c.health[m.NodeID] = append(c.health[m.NodeID], *m)
	case *schema.Hello:
		c.hello[m.NodeID] = append(c.hello[m.NodeID], *m)
	}
}

func (c *collector) acksOf(node, id string) []schema.Ack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]schema.Ack(nil), c.acks[node+"/"+id]...)
}

func (c *collector) healths(node string) []schema.Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]schema.Health(nil), c.health[node]...)
}

func (c *collector) hellos(node string) []schema.Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]schema.Hello(nil), c.hello[node]...)
}
