package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// TestForgedEventsNeverReachStep runs a coordinator (registries in memory)
// whose rollout waits for p1's install, on each broker, and publishes what
// someone who can write the events topic would: `done` acks, a `rejected`
// ack and `passing` health for p1, unsigned, signed by enrolled node p2
// (under its own key id and under p1's). Each is dead-lettered with its
// reason and the rollout does not move: p1's install still pending, no
// failure, no switch-back. Then p1's own `rejected` ack of an epoch no
// leader sent is refused by Step (future-epoch); and p1's own `done` ack
// moves the rollout, which shows the forgeries took the same path.
func TestForgedEventsNeverReachStep(t *testing.T) {
	itest.EachBroker(t, func(t *testing.T, brokers []string) {
		prefix := fmt.Sprintf("regshift-test.forged.%d.", time.Now().UnixNano())
		t.Cleanup(func() { // after the coordinator stopped
			tp := events.NewTopics(prefix)
			client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
			_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{tp.Commands, tp.Events, tp.Requests, tp.State, tp.DLQ}})
		})
		testForgedEventsNeverReachStep(t, brokers, prefix)
	})
}

func testForgedEventsNeverReachStep(t *testing.T, brokers []string, prefix string) {
	ctx := t.Context()
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix, cfg.NodeKeysDir = brokers, prefix, t.TempDir()
	p1, p2 := nodeKey(t, cfg.NodeKeysDir, "p1"), nodeKey(t, cfg.NodeKeysDir, "p2")
	api := serveLeading(ctx, t, cfg, memoryRegistries())

	topics := events.NewTopics(prefix)
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), testLog(t), mustMetrics(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	plan, err := coordinator.ParsePlan([]byte(boundPlan))
	if err != nil {
		t.Fatal(err)
	}
	createRollout(ctx, t, prod, topics, "ro-1", plan)
	var r coordinator.Rollout
	await(t, "p1's install pending", func() error {
		if err := getJSON(api+"/v1/rollouts/ro-1", &r); err != nil {
			return err
		}
		if n := r.Node("p1"); r.Phase != schema.PhaseRolling || n == nil || n.Pending == nil {
			return fmt.Errorf("phase %s", r.Phase)
		}
		return nil
	})
	install := r.Node("p1").Pending.Command.ID

	publish := func(s *events.Signer, keyID string, m schema.Message) {
		t.Helper()
		rec, err := (&events.Encoder{Topics: topics, Source: "forger", Signer: s}).Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if keyID != "" {
			for i, h := range rec.Headers {
				if h.Key == events.HeaderKeyID {
					rec.Headers[i].Value = []byte(keyID)
				}
			}
		}
		if err := prod.Publish(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(outcome schema.AckOutcome, epoch uint64) *schema.Ack {
		a := &schema.Ack{NodeID: "p1", CommandID: install, RolloutID: "ro-1", Epoch: epoch, Outcome: outcome, At: time.Now().UTC()}
		if outcome != schema.AckDone {
			a.Reason = "bad-signature"
		}
		return a
	}
	passing := &schema.Health{NodeID: "p1", ObservedAt: time.Now().UTC(), Interfaces: []schema.InterfaceHealth{
		{Name: "consul", State: schema.StateActive, Status: schema.HealthPassing, Resolved: 1}}}
	publish(nil, "", ack(schema.AckRejected, 1)) // one would switch the rollout back (failure budget 0)
	publish(p2, "", ack(schema.AckRejected, 1))
	publish(nil, "", ack(schema.AckDone, 1))
	publish(p2, "", ack(schema.AckDone, 1))
	publish(p2, "p1", ack(schema.AckDone, 1))
	publish(nil, "", passing)
	publish(p2, "", passing)
	consumed := func() float64 {
		var n float64
		for _, outcome := range []string{"handled", "dead-lettered"} {
			n += metric(t, api, fmt.Sprintf(`regshift_events_consumed_total{outcome=%q,topic=%q}`, outcome, topics.Events))
		}
		return n
	}
	await(t, "the forgeries consumed", func() error {
		if n := consumed(); n < 7 {
			return fmt.Errorf("%v of 7 consumed", n)
		}
		return nil
	})
	// unmoved checks a view of the rollout stepped after now: it holds
	// every input folded before.
	unmoved := func(what string) {
		t.Helper()
		since := time.Now()
		await(t, "a view after "+what, func() error {
			if err := getJSON(api+"/v1/rollouts/ro-1", &r); err != nil {
				return err
			}
			if !r.Now.After(since) {
				return fmt.Errorf("the view is of %s", r.Now)
			}
			return nil
		})
		n := r.Node("p1")
		if r.Phase != schema.PhaseRolling || n.Pending == nil || n.Pending.Command.ID != install || n.Reached != "" || n.Failure != "" {
			t.Fatalf("%s moved the rollout: phase %s, p1 %+v", what, r.Phase, n.NodeRecord)
		}
		for _, d := range r.Decisions {
			if d.Decision == schema.DecisionNodeFailed || d.Decision == schema.DecisionSwitchBack {
				t.Fatalf("%s led to decision %+v", what, d)
			}
		}
	}
	unmoved("forged events")
	want := map[events.Reason]float64{events.ReasonUnsigned: 3, events.ReasonWrongSigner: 3, events.ReasonBadSignature: 1}
	for reason, n := range want {
		sample := fmt.Sprintf(`regshift_events_dead_letters_total{reason=%q,topic=%q}`, reason, topics.Events)
		if got := metric(t, api, sample); got != n {
			t.Errorf("%s = %v, want %v", sample, got, n)
		}
	}

	publish(p1, "", ack(schema.AckRejected, 99))
	await(t, "p1's ack of epoch 99 refused", func() error {
		if n := metric(t, api, `regshift_coordinator_inputs_refused_total{reason="future-epoch"}`); n != 1 {
			return fmt.Errorf("%v refused", n)
		}
		return nil
	})
	unmoved("an ack of epoch 99")

	publish(p1, "", ack(schema.AckDone, 1))
	await(t, "p1's own ack counted", func() error {
		if err := getJSON(api+"/v1/rollouts/ro-1", &r); err != nil {
			return err
		}
		if n := r.Node("p1"); n.Reached != schema.ReachedInstalled {
			return fmt.Errorf("p1 %+v", n.NodeRecord)
		}
		return nil
	})
}

// memoryRegistries opens the old and the new registry in memory, each one
// store whatever the address.
func memoryRegistries() server.Opener {
	old, fresh := memory.NewStore(), memory.NewStore()
	return func(kind, _ string, log *slog.Logger) (registries.Registry, error) {
		if kind == "zookeeper" {
			return memory.New(old, log), nil
		}
		return memory.New(fresh, log), nil
	}
}
