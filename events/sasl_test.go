package events_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestSASLPlain bootstraps, publishes and consumes through a private
// broker's SASL_PLAINTEXT listener with PLAIN credentials read from a
// file, and checks a wrong password is refused.
func TestSASLPlain(t *testing.T) {
	p := servers.StartPrivate(t, servers.Kafka)
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(servers.PrivateSASLPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sec, err := events.LoadSecurity(nil, &events.SASLSettings{Mechanism: "plain", Username: servers.PrivateSASLUser, PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	brokers := []string{p.SASLAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.Security = "sasl.", sec
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		t.Fatalf("bootstrap over SASL: %v", err)
	}
	m, _ := testMetrics(t)
	pcfg := events.DefaultProducerConfig(brokers)
	pcfg.Security = sec
	prod, err := events.NewProducer(pcfg, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ack := &schema.Ack{NodeID: "node-s", CommandID: "c1", RolloutID: "r1", Epoch: 1, Outcome: schema.AckDone, At: now}
	rec := encode(t, encoder(topics, nil), ack)
	if err := prod.Publish(ctx, rec); err != nil {
		t.Fatalf("publish over SASL: %v", err)
	}
	n, err := events.PartitionCount(ctx, sec, brokers, topics.Events)
	if err != nil || n < 1 {
		t.Fatalf("partition count over SASL: %d %v", n, err)
	}
	got := make(chan schema.Message, 1)
	ccfg := events.DefaultConsumerConfig(brokers, topics.Events, topics.DLQ)
	ccfg.Security = sec
	g, err := events.NewGroupConsumer(ccfg, "sasl-test", events.Validator{Class: schema.ClassEvent}, func(_ context.Context, d events.Delivery) error {
		got <- d.Message
		return nil
	}, prod, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(cctx) }()
	select {
	case msg := <-got:
		if a, ok := msg.(*schema.Ack); !ok || a.CommandID != "c1" {
			t.Fatalf("consumed %+v", msg)
		}
	case <-ctx.Done():
		t.Fatal("nothing consumed over SASL")
	}
	ccancel()
	<-done

	if err := os.WriteFile(pw, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad, err := events.LoadSecurity(nil, &events.SASLSettings{Mechanism: "plain", Username: servers.PrivateSASLUser, PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, err = events.PartitionCount(ctx, bad, brokers, topics.Events)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	t.Logf("wrong password refused: %v", err)
}
