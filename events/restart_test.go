package events_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestBrokerRestartLosesNothing streams signed commands to an agent loop
// and acks to a coordinator loop on a private broker, stops and restarts
// the broker mid-stream — the publisher goes on into the outage — and
// checks that every record arrives, commands in order, and that duplicates
// are recognised by id: the agent's verifier refuses an applied command id,
// the coordinator's handler drops an ack id it has seen. Whether the restart
// duplicates a record varies, so the test also re-sends one pair as a
// producer retry would.
func TestBrokerRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private broker")
	}
	k := servers.StartPrivate(t, servers.Kafka)
	brokers := []string{k.Addr()}
	tp := bootstrap(t, brokers, nil)
	m, reg := testMetrics(t)
	pub := producer(t, brokers, m)
	coord := newSigner(t, "coord-1")

	// The agent: applies each command once, in order.
	replay := events.NewReplay()
	var mu sync.Mutex
	var applied []string
	applyCmd := func(_ context.Context, d events.Delivery) error {
		h := d.Message.(schema.Command).Header()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range applied {
			if id == h.CommandID {
				t.Errorf("command %s applied twice: the verifier let a duplicate through", id)
			}
		}
		applied = append(applied, h.CommandID)
		replay.Record(h)
		return nil
	}
	cv, err := events.NewCommandVerifier(events.DefaultCommandVerifierConfig(node), keyringOf(t, coord), replay)
	if err != nil {
		t.Fatal(err)
	}
	partitionConsumer(t, brokers, tp, events.Partition([]byte(node), 4), &memOffsets{next: -2}, cv, applyCmd, m, pub)

	// The coordinator: acks, deduplicated by ce_id.
	acks := newCollector()
	groupConsumer(t, brokers, tp.Events, tp.DLQ, events.Validator{Class: schema.ClassEvent}, acks.handle, m, pub)

	const n = 120
	enc := &events.Encoder{Topics: tp, Source: "regshift/test", Signer: coord}
	var wantCmds []string
	var firstRecs []kafka.Message
	published := make(chan error, 1)
	// A third into the stream the publisher lets the test stop the broker
	// and goes on publishing into the outage once it is down.
	third, stopped := make(chan struct{}), make(chan struct{})
	stream := func() error {
		for i := range n {
			if i == n/3 {
				close(third)
				<-stopped
			}
			c := example(t, schema.TypeActivate).(*schema.Activate)
			c.CommandID = fmt.Sprintf("cmd-%04d", i)
			c.IssuedAt, c.ExpiresAt = time.Now(), time.Now().Add(10*time.Minute)
			a := example(t, schema.TypeAck).(*schema.Ack)
			a.CommandID, a.Outcome, a.Reason = c.CommandID, schema.AckDone, ""
			cr, err := enc.Encode(c)
			if err != nil {
				return err
			}
			ar, err := enc.Encode(a)
			if err != nil {
				return err
			}
			wantCmds = append(wantCmds, c.CommandID)
			if i == 0 {
				firstRecs = []kafka.Message{cr, ar}
			}
			if err := pub.Publish(context.Background(), cr, ar); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
		}
		return nil
	}
	go func() { published <- stream() }()

	select {
	case <-third:
	case err := <-published:
		t.Fatalf("publisher ended early: %v", err)
	}
	t.Log("stopping the broker mid-stream")
	k.Stop(t)
	close(stopped)
	t.Log("publishing into the outage; starting the broker again")
	k.Start(t)
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publishing across the restart: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("publisher did not finish within 3 minutes of the restart")
	}
	// A producer retry after a lost acknowledgement writes a record twice;
	// the restart may or may not have caused one, so add one for sure.
	if err := pub.Publish(context.Background(), firstRecs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "every ack", func() bool { return acks.len() == n })
	waitFor(t, 2*time.Minute, "every command", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) == n
	})
	mu.Lock()
	if !reflect.DeepEqual(applied, wantCmds) {
		t.Errorf("commands applied out of order:\n got %v\nwant %v", applied, wantCmds)
	}
	mu.Unlock()
	var dupCmds float64
	var dupAcks int
	waitFor(t, time.Minute, "the re-sent records recognised as duplicates", func() bool {
		dupCmds = counter(t, reg, "regshift_events_consumed_total", map[string]string{"topic": tp.Commands, "outcome": string(events.ReasonDuplicate)})
		acks.mu.Lock()
		defer acks.mu.Unlock()
		dupAcks = acks.dups
		return dupCmds >= 1 && dupAcks >= 1
	})
	t.Logf("across the restart, with one re-sent pair: %v duplicate commands refused by id, %d duplicate acks dropped by id, %v publish retries, %v reader rebuilds",
		dupCmds, dupAcks, counter(t, reg, "regshift_events_publish_retries_total", nil), counter(t, reg, "regshift_events_reader_rebuilds_total", nil))
	if dl := counter(t, reg, "regshift_events_dead_letters_total", nil); dl != 0 {
		t.Errorf("%v records dead-lettered; a restart must not make good records bad", dl)
	}
}
