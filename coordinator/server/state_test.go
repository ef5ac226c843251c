package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// stateEnv is an embedded broker with the topics made, a producer, and the
// coordinator's signing key, ready for records to be planted on the state
// topic before a coordinator starts.
type stateEnv struct {
	brokers []string
	topics  events.Topics
	prod    *events.Producer
	coord   key // the coordinator's signing key, coord-test
	cfg     server.Config
	open    server.Opener
}

func newStateEnv(t *testing.T) *stateEnv {
	t.Helper()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close) // after the coordinator stopped
	e := &stateEnv{brokers: broker.ListenAddrs(), topics: events.NewTopics("regshift.")}
	tcfg := events.DefaultTopicsConfig()
	tcfg.CommandPartitions = 2
	if _, err := events.Bootstrap(t.Context(), e.brokers, tcfg); err != nil {
		t.Fatal(err)
	}
	if e.prod, err = events.NewProducer(events.DefaultProducerConfig(e.brokers), testLog(t), mustMetrics(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.prod.Close() }) // after the fake agents stopped
	e.coord = writeKey(t, t.TempDir(), "coord-test")
	e.cfg = server.DefaultConfig()
	e.cfg.Brokers, e.cfg.SigningKey, e.cfg.NodeKeysDir = e.brokers, e.coord.file, t.TempDir()
	e.open = memoryRegistries()
	return e
}

// agent enrols node's key and starts a fake agent for it. Start it before
// the coordinator, which reads the node keyring as it starts (and a change
// only at its next look, seconds later); the agent reads the commands from
// the start of the topic.
func (e *stateEnv) agent(ctx context.Context, t *testing.T, node string) *fakeAgent {
	t.Helper()
	return startFakeAgent(ctx, t, e.brokers, e.topics, e.prod, nodeKey(t, e.cfg.NodeKeysDir, node))
}

// plant writes messages to their topic, signed by s (unsigned when nil).
func (e *stateEnv) plant(t *testing.T, s *events.Signer, msgs ...schema.Message) {
	t.Helper()
	enc := &events.Encoder{Topics: e.topics, Source: "regshift/coordinator/coord-test", Signer: s}
	if _, err := e.prod.Send(t.Context(), enc, msgs...); err != nil {
		t.Fatal(err)
	}
}

// planFor is boundPlan (one wave, max one in flight) over nodes.
func planFor(t *testing.T, nodes ...string) schema.Plan {
	t.Helper()
	p, err := coordinator.ParsePlan([]byte(boundPlan))
	if err != nil {
		t.Fatal(err)
	}
	p.Nodes = nil
	for _, n := range nodes {
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: n, Roles: []string{schema.RoleProvider}})
	}
	return p
}

// rolloutRecords are the records of a rollout of plan, prepared and in its
// first wave with no command sent yet: a leader that loads them sends the
// wave's install at its first tick. edit, when set, changes them first.
func rolloutRecords(t *testing.T, id string, plan schema.Plan, edit func(h *schema.RolloutRecord, nodes []schema.NodeRecord)) []schema.Message {
	t.Helper()
	now := time.Now().UTC()
	r, _, err := coordinator.NewRollout(id, plan, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	coordinator.Step(&r, coordinator.RegistryIn{Now: now, Report: coordinator.RegistryReport{At: now, Reachable: true, Healthy: true,
		BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	if r.Phase != schema.PhaseRolling {
		t.Fatalf("rollout %s is %s", id, r.Phase)
	}
	head := r.RolloutRecord
	nodes := make([]schema.NodeRecord, len(r.Nodes))
	for i := range r.Nodes {
		nodes[i] = r.NodeRecord(i)
		nodes[i].Pending, nodes[i].Touched = nil, false
	}
	if edit != nil {
		edit(&head, nodes)
	}
	msgs := []schema.Message{&head}
	for i := range nodes {
		msgs = append(msgs, &nodes[i])
	}
	return msgs
}

// awaitInstalls waits until each agent received its install and activate:
// the leader has stepped, persisted and sent for a while.
func awaitInstalls(t *testing.T, agents ...*fakeAgent) {
	t.Helper()
	for _, a := range agents {
		await(t, a.node+" installed and activated", func() error {
			if !a.received(schema.TypeInstall) || !a.received(schema.TypeActivate) {
				return fmt.Errorf("commands so far: %v", a.kinds())
			}
			return nil
		})
	}
}

// rolloutIDs lists GET /v1/rollouts once it lists id (the API serves a
// snapshot at most 200 ms old): each id, and why it is quarantined ("" for
// a rollout that runs).
func rolloutIDs(t *testing.T, api, id string) map[string]string {
	t.Helper()
	out := map[string]string{}
	await(t, "GET /v1/rollouts lists "+id, func() error {
		var list []struct {
			ID          string `json:"id"`
			Quarantined string `json:"quarantined"`
		}
		if err := getJSON(api+"/v1/rollouts", &list); err != nil {
			return err
		}
		clear(out)
		for _, s := range list {
			out[s.ID] = s.Quarantined
		}
		if _, ok := out[id]; !ok {
			return fmt.Errorf("it lists %v", out)
		}
		return nil
	})
	return out
}

// TestForgedStateIsNotActedOn plants rollouts on the state topic that no
// coordinator key signed — unsigned, signed by a key the coordinators do
// not trust, and signed by that key under the coordinator's key id — each
// in its first wave, to install a package of the writer's choice on a
// node. A new leader must not load them nor send any command to their
// nodes, and must count what it ignored; a rollout requested after runs.
func TestForgedStateIsNotActedOn(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	mallory, _ := events.NewSigner("mallory", priv)
	impostor, _ := events.NewSigner("coord-test", priv) // mallory's key under the coordinator's key id
	evil := func(node string) schema.Plan {
		p := planFor(t, node)
		p.To.Package.URL = "http://127.0.0.1:9/evil.tgz"
		return p
	}
	e.plant(t, nil, rolloutRecords(t, "ro-unsigned", evil("victim-1"), nil)...)
	e.plant(t, mallory, rolloutRecords(t, "ro-stranger", evil("victim-2"), nil)...)
	e.plant(t, impostor, rolloutRecords(t, "ro-impostor", evil("victim-3"), nil)...)

	var victims []*fakeAgent
	for _, v := range []string{"victim-1", "victim-2", "victim-3"} {
		victims = append(victims, e.agent(ctx, t, v))
	}
	good := e.agent(ctx, t, "good")
	api := serveLeading(ctx, t, e.cfg, e.open)
	createRollout(ctx, t, e.prod, e.topics, "ro-good", planFor(t, "good"))
	awaitInstalls(t, good)

	for _, v := range victims {
		if got := v.kinds(); len(got) > 0 {
			t.Errorf("%s, a node of a forged rollout, received %v", v.node, got)
		}
	}
	if ids := rolloutIDs(t, api, "ro-good"); len(ids) != 1 || ids["ro-good"] != "" {
		t.Errorf("rollouts %v, want only ro-good", ids)
	}
	for reason, want := range map[events.Reason]float64{events.ReasonUnsigned: 2, events.ReasonUnknownKey: 2, events.ReasonBadSignature: 2} {
		sample := fmt.Sprintf(`regshift_coordinator_state_records_refused_total{reason=%q}`, reason)
		if got := metric(t, api, sample); got != want {
			t.Errorf("%s = %v, want %v (a head and a node record)", sample, got, want)
		}
	}
}

// maxEpoch is the highest epoch the schema allows, 2^53-1: a leader that
// took it as the highest claim could claim none after it.
const maxEpoch = 1<<53 - 1

func claim(epoch uint64, by string) *schema.EpochRecord {
	return &schema.EpochRecord{Epoch: epoch, Leader: by, AcquiredAt: time.Now().UTC()}
}

func health(t *testing.T, api string) server.Health {
	t.Helper()
	var h server.Health
	if err := getJSON(api+"/healthz", &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEpochClaimOfMaxDoesNotStopLeading: the state topic holds a claim of
// epoch 1, then claims of 2^53-1 — one signed by the coordinator's own key,
// one unsigned. A new replica must still lead, at epoch 2.
func TestEpochClaimOfMaxDoesNotStopLeading(t *testing.T) {
	e := newStateEnv(t)
	e.plant(t, e.coord.Signer, claim(1, "coord-old"), claim(maxEpoch, "coord-old"))
	e.plant(t, nil, claim(maxEpoch, "mallory"))
	api := serveLeading(t.Context(), t, e.cfg, e.open)
	if h := health(t, api); !h.Leader || h.Epoch != 2 {
		t.Fatalf("healthz %+v, want the lead at epoch 2", h)
	}
	if n := metric(t, api, "regshift_coordinator_epoch_claims_refused_total"); n != 1 {
		t.Errorf("%v signed claims refused, want 1", n)
	}
}

// TestEpochWatchIgnoresJumpingClaims: while a replica leads at epoch 1, a
// signed claim of 2^53-1 and an unsigned claim of epoch 2 appear: it keeps
// the lead. Then a signed claim of epoch 2 appears — another replica took
// over — and it steps down at once (alone in its group, it is elected again
// and leads at epoch 3).
func TestEpochWatchIgnoresJumpingClaims(t *testing.T) {
	e := newStateEnv(t)
	api := serveLeading(t.Context(), t, e.cfg, e.open)
	if h := health(t, api); h.Epoch != 1 {
		t.Fatalf("leads at epoch %d, want 1", h.Epoch)
	}
	e.plant(t, e.coord.Signer, claim(maxEpoch, "coord-rogue"))
	e.plant(t, nil, claim(2, "mallory"))
	await(t, "both claims ignored", func() error {
		if h := health(t, api); !h.Leader || h.Epoch != 1 {
			t.Fatalf("an ignored claim took the lead: healthz %+v", h)
		}
		refused := metric(t, api, "regshift_coordinator_epoch_claims_refused_total")
		unsigned := metric(t, api, `regshift_coordinator_state_records_refused_total{reason="unsigned"}`)
		if refused != 1 || unsigned != 1 {
			return fmt.Errorf("claims refused %v, unsigned records %v", refused, unsigned)
		}
		return nil
	})
	e.plant(t, e.coord.Signer, claim(2, "coord-other"))
	await(t, "deposed by epoch 2, then leading at epoch 3", func() error {
		if h := health(t, api); !h.Leader || h.Epoch != 3 {
			return fmt.Errorf("healthz %+v", h)
		}
		return nil
	})
}

// TestInconsistentRolloutIsQuarantined plants, signed by the coordinator's
// key, records that pass their schemas but do not make a rollout — a
// pending install for a node outside the rollout, a plan from and to the
// same interface — beside a sound rollout. The new leader quarantines the
// two with their reasons, commands none of their nodes nor the outsider,
// and runs the sound one.
func TestInconsistentRolloutIsQuarantined(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	long := time.Now().UTC().Add(-10 * time.Second) // a re-send is due at once
	e.plant(t, e.coord.Signer, rolloutRecords(t, "ro-outsider", planFor(t, "b1"), func(_ *schema.RolloutRecord, nodes []schema.NodeRecord) {
		nodes[0].Pending = &schema.PendingCommand{Command: schema.CommandRef{ID: coordinator.CommandID("ro-outsider", "b1", schema.CommandInstall),
			Node: "outsider", Kind: schema.CommandInstall, Interface: "consul"}, FirstSent: long, LastSent: long, Sends: 1}
	})...)
	e.plant(t, e.coord.Signer, rolloutRecords(t, "ro-same", planFor(t, "b2"), func(h *schema.RolloutRecord, _ []schema.NodeRecord) {
		h.Plan.To.Name = h.Plan.From.Name
	})...)
	e.plant(t, e.coord.Signer, rolloutRecords(t, "ro-sound", planFor(t, "s1"), nil)...)

	var idle []*fakeAgent
	for _, n := range []string{"b1", "b2", "outsider"} {
		idle = append(idle, e.agent(ctx, t, n))
	}
	sound := e.agent(ctx, t, "s1")
	api := serveLeading(ctx, t, e.cfg, e.open)
	awaitInstalls(t, sound)

	for _, a := range idle {
		if got := a.kinds(); len(got) > 0 {
			t.Errorf("%s received %v from a quarantined rollout", a.node, got)
		}
	}
	ids := rolloutIDs(t, api, "ro-sound")
	for id, want := range map[string]string{"ro-outsider": `node b1: pending command`, "ro-same": `to.name: "zookeeper" is also the from interface`} {
		if !containsAll(ids[id], want, "inconsistent rollout records", id) {
			t.Errorf("%s quarantined for %q, want a reason saying %q", id, ids[id], want)
		}
	}
	if reason, listed := ids["ro-sound"]; !listed || reason != "" {
		t.Errorf("ro-sound listed %v, quarantined for %q", listed, reason)
	}
	resp, err := client.Get(api + "/v1/rollouts/ro-same")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("GET /v1/rollouts/ro-same: %s, want 409", resp.Status)
	}
	if n := metric(t, api, "regshift_coordinator_rollouts_quarantined"); n != 2 {
		t.Errorf("regshift_coordinator_rollouts_quarantined = %v, want 2", n)
	}
	if h := health(t, api); !h.Leader {
		t.Errorf("healthz %+v: no longer leading", h)
	}
}

func containsAll(s string, parts ...string) bool {
	return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(s, p) })
}
