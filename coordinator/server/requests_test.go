package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// TestReplayedRequestIsDropped: an operator pauses, resumes and pauses a
// rollout again; the resume, signed and still within its validity window,
// is then published again, byte for byte — by an attacker or a retrying
// pipeline. It must not undo the later pause: the coordinator drops a
// request id it handled, and so does the replica that leads after it, from
// what the state topic remembers.
func TestReplayedRequestIsDropped(t *testing.T) {
	ctx := t.Context()
	brokers := fakeBroker(t)
	ops := operatorKeys(t, map[string]events.Role{"alice": events.RoleAdmin})
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.OperatorKeysDir = brokers, ops.dir
	cfg.SigningKey = writeKey(t, t.TempDir(), "coord-test").file // both replicas: the next leader trusts the first's records
	open := memoryRegistries()
	first, stopFirst := context.WithCancel(ctx)
	api := serveLeading(first, t, cfg, open)

	alice := ops.requester(t, ctx, brokers, "alice")
	alice.create("ro-replay", idlePlan(t))
	awaitRollout(t, api, "ro-replay", "created", func(*coordinator.Rollout) bool { return true })
	paused := func(want bool) func(r *coordinator.Rollout) bool {
		return func(r *coordinator.Rollout) bool { return r.Paused == want }
	}
	alice.send(&schema.Pause{RequestHeader: alice.header("ro-replay")})
	awaitRollout(t, api, "ro-replay", "paused", paused(true))
	resume := alice.send(&schema.Resume{RequestHeader: alice.header("ro-replay")})
	awaitRollout(t, api, "ro-replay", "resumed", paused(false))
	alice.send(&schema.Pause{RequestHeader: alice.header("ro-replay")})
	awaitRollout(t, api, "ro-replay", "paused again", paused(true))

	replay := func(api string) {
		t.Helper()
		alice.publish(resume)
		await(t, "the replayed resume dropped as a duplicate", func() error {
			if n := metric(t, api, `regshift_events_consumed_total{outcome="duplicate",topic="regshift.requests"}`); n != 1 {
				return fmt.Errorf("%v duplicates", n)
			}
			return nil
		})
		r := rollout(t, api, "ro-replay")
		if !r.Paused {
			t.Fatalf("the replayed resume undid the later pause: %+v", r.Decisions)
		}
	}
	replay(api)

	// Another replica leads from the state topic alone.
	stopFirst()
	api = serveLeading(ctx, t, cfg, open)
	awaitRollout(t, api, "ro-replay", "the new leader's view", paused(true))
	replay(api)
}

// TestRequestsNeedTheRightKey: a request goes through only when its key
// is trusted, its requested_by is that key and the key's role allows it;
// a key revoked or removed in the keyring folder is refused within
// seconds, without a restart. Each refusal is dead-lettered with its
// reason and leaves the rollout as it was.
func TestRequestsNeedTheRightKey(t *testing.T) {
	ctx := t.Context()
	brokers := fakeBroker(t)
	ops := operatorKeys(t, map[string]events.Role{"root": events.RoleAdmin, "ops": events.RoleOperate, "viewer": "", "bob": events.RoleOperate})
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.OperatorKeysDir = brokers, ops.dir
	api := serveLeading(ctx, t, cfg, memoryRegistries())
	dead := func(reason events.Reason, want float64) {
		t.Helper()
		await(t, fmt.Sprintf("%v dead letters of reason %s", want, reason), func() error {
			sample := fmt.Sprintf(`regshift_events_dead_letters_total{reason=%q,topic="regshift.requests"}`, reason)
			if n := metric(t, api, sample); n != want {
				return fmt.Errorf("%v", n)
			}
			return nil
		})
	}
	untouched := func() {
		t.Helper()
		r := rollout(t, api, "ro-keys")
		if r.Paused || r.Phase == schema.PhaseSwitchedBack || r.Phase == schema.PhaseSwitchingBack {
			t.Fatalf("a refused request changed the rollout: paused %v, phase %s, decisions %+v", r.Paused, r.Phase, r.Decisions)
		}
	}
	root, op, viewer, bob := ops.requester(t, ctx, brokers, "root"), ops.requester(t, ctx, brokers, "ops"),
		ops.requester(t, ctx, brokers, "viewer"), ops.requester(t, ctx, brokers, "bob")
	root.create("ro-keys", idlePlan(t))
	awaitRollout(t, api, "ro-keys", "created by an admin", func(*coordinator.Rollout) bool { return true })

	viewer.send(&schema.Pause{RequestHeader: viewer.header("ro-keys")})
	op.send(&schema.Abort{RequestHeader: op.header("ro-keys")})
	other := idlePlan(t)
	other.Nodes[0].NodeID = "p2" // in no rollout: only the role refuses it
	op.create("ro-other", other)
	dead(events.ReasonForbidden, 3)
	h := bob.header("ro-keys")
	h.RequestedBy = "root" // bob's key, the admin's name
	bob.send(&schema.Abort{RequestHeader: h})
	dead(events.ReasonRequesterMismatch, 1)
	untouched()
	if _, err := getRollout(api, "ro-other"); err == nil {
		t.Fatal("an operate key created a rollout")
	}

	op.send(&schema.Pause{RequestHeader: op.header("ro-keys")})
	awaitRollout(t, api, "ro-keys", "paused by an operate key", func(r *coordinator.Rollout) bool { return r.Paused })

	// Revoked in the folder's revoked file while the coordinator runs.
	start := time.Now()
	itest.ReplaceFile(t, filepath.Join(ops.dir, events.RevokedFile), "ops # lost laptop\n")
	awaitReload(t, api, ops.dir, 1)
	t.Logf("revocation in effect %s after the revoked file was written", time.Since(start).Round(time.Millisecond))
	op.send(&schema.Resume{RequestHeader: op.header("ro-keys")})
	dead(events.ReasonRevokedKey, 1)
	if r := rollout(t, api, "ro-keys"); !r.Paused {
		t.Fatal("a revoked key resumed the rollout")
	}

	// An admin key whose .pub is deleted.
	start = time.Now()
	if err := os.Remove(filepath.Join(ops.dir, "root.pub")); err != nil {
		t.Fatal(err)
	}
	awaitReload(t, api, ops.dir, 2)
	t.Logf("removal in effect %s after root.pub was deleted", time.Since(start).Round(time.Millisecond))
	root.send(&schema.Abort{RequestHeader: root.header("ro-keys")})
	dead(events.ReasonUnknownKey, 1)
	if r := rollout(t, api, "ro-keys"); r.Phase == schema.PhaseSwitchingBack || r.Phase == schema.PhaseSwitchedBack {
		t.Fatal("a removed key aborted the rollout")
	}
}

// TestSeenRequestsAreForgottenOnceExpired: the ids a coordinator keeps
// are bounded by the validity window. Once a request is past it, its seen
// record is deleted from the state topic (gone after compaction), and a
// replay of it is refused as expired.
func TestSeenRequestsAreForgottenOnceExpired(t *testing.T) {
	ctx := t.Context()
	cluster, brokers := fakeCluster(t)
	ops := operatorKeys(t, map[string]events.Role{"alice": events.RoleAdmin})
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.OperatorKeysDir = brokers, ops.dir
	var skip atomic.Int64 // how far the coordinator's clock is ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	api := serveLeading(ctx, t, cfg, memoryRegistries(), clock)

	alice := ops.requester(t, ctx, brokers, "alice")
	create := alice.create("ro-expiry", idlePlan(t))
	alice.send(&schema.Pause{RequestHeader: alice.header("ro-expiry")})
	awaitRollout(t, api, "ro-expiry", "paused", func(r *coordinator.Rollout) bool { return r.Paused })
	seenKeys := func() []string {
		var keys []string
		log := events.StateLog{Brokers: brokers, Topic: "regshift.state", Decoder: events.Validator{Class: schema.ClassState}}
		if _, err := log.Replay(ctx, func(_ int64, d events.Delivery, err error) {
			if r, ok := d.Message.(*schema.SeenRequest); err == nil && ok {
				keys = append(keys, r.PartitionKey())
			}
		}); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	await(t, "both requests remembered in the state topic", func() error {
		if k := seenKeys(); len(k) != 2 {
			return fmt.Errorf("seen records %v", k)
		}
		return nil
	})

	skip.Store(int64(17 * time.Minute)) // past 15 min + 30 s, and the 30 s kept for other replicas' clocks
	await(t, "the expired records deleted", func() error {
		cluster.Compact()
		if k := seenKeys(); len(k) != 0 {
			return fmt.Errorf("seen records %v", k)
		}
		return nil
	})
	alice.publish(create)
	await(t, "the replayed create refused as expired", func() error {
		if n := metric(t, api, `regshift_events_dead_letters_total{reason="expired",topic="regshift.requests"}`); n != 1 {
			return fmt.Errorf("%v", n)
		}
		return nil
	})
}

// awaitReload waits until the keyring folder dir was read again n times,
// and fails when that took more than two polls and a margin.
func awaitReload(t *testing.T, api, dir string, n float64) {
	t.Helper()
	deadline := time.Now().Add(2*events.DefaultKeyringPoll + 3*time.Second)
	for metric(t, api, fmt.Sprintf(`regshift_events_keyring_reloads_total{keyring=%q,outcome="reloaded"}`, dir)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the keyring folder's change not read within %s", 2*events.DefaultKeyringPoll+3*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fakeBroker(t *testing.T) []string {
	t.Helper()
	_, brokers := fakeCluster(t)
	return brokers
}

func fakeCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close) // after the coordinators stopped
	return broker, broker.ListenAddrs()
}

// memoryRegistries opens in-memory registries, one store for each kind,
// shared by every replica that uses the opener.
func memoryRegistries() server.Opener {
	old, fresh := memory.NewStore(), memory.NewStore()
	return func(kind, _ string, log *slog.Logger) (registries.Registry, error) {
		if kind == "zookeeper" {
			return memory.New(old, log), nil
		}
		return memory.New(fresh, log), nil
	}
}

// idlePlan is boundPlan with an ack timeout long enough that its node,
// which has no agent, does not fail while the test runs.
func idlePlan(t *testing.T) schema.Plan {
	t.Helper()
	p, err := coordinator.ParsePlan([]byte(strings.Replace(boundPlan, "ack_timeout_seconds: 30", "ack_timeout_seconds: 600", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keyFolder is an operator keyring folder.
type keyFolder struct {
	dir  string
	keys map[string]*events.Signer
}

// operatorKeys makes a key pair for each id in a new keyring folder and
// writes its roles file; an empty role is left out of it (observe).
func operatorKeys(t *testing.T, roles map[string]events.Role) keyFolder {
	t.Helper()
	f := keyFolder{dir: t.TempDir(), keys: map[string]*events.Signer{}}
	private := t.TempDir()
	var lines []string
	for id, role := range roles {
		s := itest.KeyPair(t, private, id)
		if err := os.Rename(filepath.Join(private, id+events.PublicKeyExt), filepath.Join(f.dir, id+events.PublicKeyExt)); err != nil {
			t.Fatal(err)
		}
		f.keys[id] = s
		if role != "" {
			lines = append(lines, id+" "+string(role))
		}
	}
	if err := os.WriteFile(filepath.Join(f.dir, events.RolesFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// requester publishes requests signed by one operator key.
type requester struct {
	t    *testing.T
	ctx  context.Context
	prod *events.Producer
	enc  *events.Encoder
	n    int
}

func (f keyFolder) requester(t *testing.T, ctx context.Context, brokers []string, id string) *requester {
	t.Helper()
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), testLog(t), mustMetrics(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	return &requester{t: t, ctx: ctx, prod: prod,
		enc: &events.Encoder{Topics: events.NewTopics("regshift."), Source: "test/" + id, Signer: f.keys[id]}}
}

// header is a new request's header, requested now by the key's id.
func (r *requester) header(rollout string) schema.RequestHeader {
	r.n++
	return schema.RequestHeader{RequestID: fmt.Sprintf("req-%s-%d-%d", r.enc.Signer.KeyID, time.Now().UnixNano(), r.n), RolloutID: rollout,
		RequestedBy: r.enc.Signer.KeyID, RequestedAt: time.Now().UTC()}
}

func (r *requester) create(id string, plan schema.Plan) kafka.Message {
	return r.send(&schema.CreateRollout{RequestHeader: r.header(id), Plan: plan})
}

// send signs and publishes req and returns the record, to publish again.
func (r *requester) send(req schema.Request) kafka.Message {
	r.t.Helper()
	rec, err := r.enc.Encode(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.publish(rec)
	return rec
}

func (r *requester) publish(rec kafka.Message) {
	r.t.Helper()
	if err := r.prod.Publish(r.ctx, rec); err != nil {
		r.t.Fatal(err)
	}
}

func getRollout(api, id string) (*coordinator.Rollout, error) {
	var r coordinator.Rollout
	if err := getJSON(api+"/v1/rollouts/"+id, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func rollout(t *testing.T, api, id string) *coordinator.Rollout {
	t.Helper()
	r, err := getRollout(api, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func awaitRollout(t *testing.T, api, id, what string, cond func(*coordinator.Rollout) bool) {
	t.Helper()
	await(t, id+" "+what, func() error {
		r, err := getRollout(api, id)
		if err != nil {
			return err
		}
		if !cond(r) {
			return fmt.Errorf("phase %s, paused %v, held %v", r.Phase, r.Paused, r.Held)
		}
		return nil
	})
}
