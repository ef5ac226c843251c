package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
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

// TestStateOfAnotherReplicaIsTrustedThroughTheKeyring: with
// CoordinatorKeysDir, a new leader loads what another replica's key signed
// and ignores what a revoked replica key signed.
func TestStateOfAnotherReplicaIsTrustedThroughTheKeyring(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	dir := filepath.Dir(e.coord.file) // holds coord-test.pub
	other, revoked := writeKey(t, dir, "coord-other"), writeKey(t, dir, "coord-gone")
	if err := os.WriteFile(filepath.Join(dir, "revoked"), []byte("coord-gone # retired\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg.CoordinatorKeysDir = dir
	e.plant(t, other.Signer, rolloutRecords(t, "ro-other", planFor(t, "o1"), nil)...)
	e.plant(t, revoked.Signer, rolloutRecords(t, "ro-gone", planFor(t, "g1"), nil)...)

	gone, o1 := e.agent(ctx, t, "g1"), e.agent(ctx, t, "o1")
	api := serveLeading(ctx, t, e.cfg, e.open)
	awaitInstalls(t, o1)
	if got := gone.kinds(); len(got) > 0 {
		t.Errorf("g1, a node of a rollout a revoked key signed, received %v", got)
	}
	if ids := rolloutIDs(t, api, "ro-other"); len(ids) != 1 || ids["ro-other"] != "" {
		t.Errorf("rollouts %v, want only ro-other", ids)
	}
	if n := metric(t, api, `regshift_coordinator_state_records_refused_total{reason="revoked-key"}`); n != 2 {
		t.Errorf("%v records refused for a revoked key, want 2", n)
	}
}

// TestCoordinatorKeysMustTrustThisReplica: a keyring that would refuse
// this replica's own records is refused at New — its next leader could not
// read them.
func TestCoordinatorKeysMustTrustThisReplica(t *testing.T) {
	own := writeKey(t, t.TempDir(), "coord-test")
	for name, dir := range map[string]func() string{
		"without its key": func() string { d := t.TempDir(); writeKey(t, d, "coord-other"); return d },
		"its key revoked": func() string {
			d := filepath.Dir(own.file)
			if err := os.WriteFile(filepath.Join(d, "revoked"), []byte("coord-test\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return d
		},
		"another key under its id": func() string { d := t.TempDir(); writeKey(t, d, "coord-test"); return d },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.SigningKey, cfg.AcceptUnsigned, cfg.AcceptUnsignedEvents, cfg.CoordinatorKeysDir = own.file, true, true, dir()
			_, err := server.New(cfg, server.Deps{Registry: prometheus.NewRegistry()}, testLog(t))
			if err == nil || !strings.Contains(err.Error(), `does not trust this replica's own key "coord-test"`) {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

// TestNodeKeysFollowedWhileRunning: a node enrolled in NodeKeysDir while
// the coordinator runs has its events accepted within seconds, without a
// restart, and a node revoked there has them refused again.
func TestNodeKeysFollowedWhileRunning(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	api := serveLeading(ctx, t, e.cfg, e.open)
	dir := t.TempDir()
	late := itest.KeyPair(t, dir, "late")
	enc := &events.Encoder{Topics: e.topics, Source: "test/late", Signer: late}
	// sent publishes a health report of late's until one is taken as want
	// (dead-lettered for a reason, or handled when reason is "").
	sent := func(want events.Reason) {
		t.Helper()
		sample := fmt.Sprintf(`regshift_events_consumed_total{outcome="handled",topic=%q}`, e.topics.Events)
		if want != "" {
			sample = fmt.Sprintf(`regshift_events_dead_letters_total{reason=%q,topic=%q}`, want, e.topics.Events)
		}
		before := metric(t, api, sample)
		await(t, fmt.Sprintf("late's health taken as %q", want), func() error {
			h := &schema.Health{NodeID: "late", ObservedAt: time.Now().UTC(), Interfaces: []schema.InterfaceHealth{
				{Name: "zookeeper", State: schema.StateActive, Status: schema.HealthPassing, Resolved: 1}}}
			if _, err := e.prod.Send(ctx, enc, h); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if n := metric(t, api, sample); n <= before {
				return fmt.Errorf("%s = %v", sample, n)
			}
			return nil
		})
	}
	sent(events.ReasonUnknownKey)
	itest.Enrol(t, dir, "late", e.cfg.NodeKeysDir)
	sent("")
	itest.ReplaceFile(t, filepath.Join(e.cfg.NodeKeysDir, events.RevokedFile), "late\n")
	sent(events.ReasonRevokedKey)
}
