package benchfleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

func now() time.Time { return time.Now().UTC() }

// healthOf is what an agent in the node's phase reports: every interface it
// holds, each passing (the simulated registries always answer).
func (f *fleet) healthOf(n *node) *schema.Health {
	ih := func(name string, state schema.InterfacePhase) schema.InterfaceHealth {
		return schema.InterfaceHealth{Name: name, State: state, Status: schema.HealthPassing}
	}
	h := &schema.Health{NodeID: n.id, ObservedAt: now()}
	switch nodePhase(n.phase.Load()) {
	case onOld:
		h.Interfaces = []schema.InterfaceHealth{ih(f.from, schema.StateActive)}
	case installed:
		h.Interfaces = []schema.InterfaceHealth{ih(f.from, schema.StateActive), ih(f.to, schema.StateInstalled)}
	case onNew:
		h.Interfaces = []schema.InterfaceHealth{ih(f.from, schema.StateStandby), ih(f.to, schema.StateActive)}
	case uninstalled:
		h.Interfaces = []schema.InterfaceHealth{ih(f.to, schema.StateActive)}
	case switchedBack:
		h.Interfaces = []schema.InterfaceHealth{ih(f.from, schema.StateActive), ih(f.to, schema.StateStandby)}
	}
	return h
}

// reportHealth publishes each node's health once every interval, spread
// evenly: N/every reports a second, sent in small slices every few
// milliseconds rather than in bursts. A reporter a core, each taking every
// workers-th node, builds and signs the reports in parallel.
func (f *fleet) reportHealth(ctx context.Context, every time.Duration) {
	workers := min(runtime.GOMAXPROCS(0), len(f.nodes))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { f.reportStripe(ctx, every, w, workers) })
	}
	wg.Wait()
}

// reportStripe reports nodes first, first+stride, ... every interval.
func (f *fleet) reportStripe(ctx context.Context, every time.Duration, first, stride int) {
	const slice = 10 * time.Millisecond
	t := time.NewTicker(slice)
	defer t.Stop()
	nodes := (len(f.nodes) - first + stride - 1) / stride
	last, credit, i := time.Now(), 0.0, first
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-t.C:
			credit += float64(nodes) * at.Sub(last).Seconds() / every.Seconds()
			last = at
		}
		for ; credit >= 1; credit-- {
			n := &f.nodes[i]
			f.publish(ctx, n, f.healthOf(n))
			f.health.Add(1)
			if i += stride; i >= len(f.nodes) {
				i = first
			}
		}
	}
}

// publish queues an agent's event, built and signed on the caller's
// goroutine (the partition readers', the health reporters').
func (f *fleet) publish(ctx context.Context, n *node, m schema.Message) {
	rec, at, err := eventRecord(f.topics, n, m)
	if err != nil {
		f.log.Error("encode", "type", m.MessageType(), "err", err) // plain structs: cannot happen
		return
	}
	f.events.add(at, m.MessageType() == schema.TypeAck)
	f.out.add(ctx, rec)
}

// eventRecord builds node n's record of m exactly as events.Encoder with
// the node's Signer does (ce_keyid = node id, the signature over
// events.PAE(type, body) with its key; no key: unsigned), minus validating
// the body against its schema (28 µs a health report, half a core at
// 20,000 reports a second, taken from the coordinator it shares the
// machine with): checkWire validates every shape the fleet sends once, and
// the coordinator validates every record it reads. It returns the
// record's ce_time.
func eventRecord(topics events.Topics, n *node, m schema.Message) (kafka.Message, time.Time, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return kafka.Message{}, time.Time{}, err
	}
	spec, err := schema.Lookup(m.MessageType())
	if err != nil {
		return kafka.Message{}, time.Time{}, err
	}
	env := events.Envelope{ID: randomID(), Type: spec.Type, Source: n.source, Time: time.Now(), PartitionKey: m.PartitionKey(), Data: body}
	if n.key != nil {
		env.KeyID, env.Signature = n.id, ed25519.Sign(n.key, events.PAE(env.Type, body)) // events.Signer.Sign
	}
	return env.Message(topics.For(spec.Class)), env.Time, nil
}

// checkWire validates one message of each shape the fleet publishes, and
// has the coordinator's events.EventVerifier decode each as node 0 builds
// and signs it.
func (f *fleet) checkWire() error {
	n := &node{id: nodeID(0), source: "regshift/agent/" + nodeID(0)}
	if len(f.nodes) > 0 {
		n.key = f.nodes[0].key
	}
	keys := events.NewKeyring()
	if n.key != nil {
		if err := keys.Add(n.id, n.key.Public().(ed25519.PublicKey)); err != nil {
			return err
		}
	}
	v, err := events.NewEventVerifier(events.EventVerifierConfig{AllowUnsigned: n.key == nil}, keys)
	if err != nil {
		return err
	}
	for _, m := range f.wireShapes(n) {
		if _, err := schema.Encode(m); err != nil {
			return fmt.Errorf("benchfleet: the fleet's %s does not meet its schema: %w", m.MessageType(), err)
		}
		rec, _, err := eventRecord(f.topics, n, m)
		if err != nil {
			return err
		}
		if _, err := v.Decode(rec); err != nil {
			return fmt.Errorf("benchfleet: the coordinator would refuse the fleet's %s: %w", m.MessageType(), err)
		}
	}
	return nil
}

// wireShapes are one message of each shape the fleet publishes for n: an
// ack with the longest reason, the health of each phase.
func (f *fleet) wireShapes(n *node) []schema.Message {
	ack := &schema.Ack{NodeID: n.id, CommandID: "bench:" + n.id + ":install", RolloutID: "bench", Epoch: 1, Outcome: schema.AckRejected,
		Reason: schema.Truncate(strings.Repeat("é", schema.MaxDetail), schema.MaxDetail), At: now()}
	msgs := []schema.Message{ack}
	for p := onOld; p <= switchedBack; p++ {
		n.phase.Store(uint32(p))
		msgs = append(msgs, f.healthOf(n))
	}
	return msgs
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}
