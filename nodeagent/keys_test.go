package nodeagent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// TestAgentFollowsItsKeyring runs an agent (on an in-process broker and
// in-memory registries) and changes the coordinator keyring folder under
// it: a coordinator key revoked in the "revoked" file is refused within
// seconds, and a key added meanwhile (a rotation) is trusted — no restart.
func TestAgentFollowsItsKeyring(t *testing.T) {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close) // after the agent stopped
	brokers := broker.ListenAddrs()
	ctx := t.Context()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.CommandPartitions = "keys.", 2
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		t.Fatal(err)
	}

	keysDir := t.TempDir()
	newDir := t.TempDir()
	oldKey, newKey := itest.KeyPair(t, keysDir, "coord-old"), itest.KeyPair(t, newDir, "coord-new")

	cfg := nodeagent.DefaultConfig()
	cfg.Node, cfg.StateDir, cfg.Trust.KeysDir = "node-k", t.TempDir(), keysDir
	identityDir := t.TempDir()
	itest.KeyPair(t, identityDir, cfg.Node)
	cfg.Identity.SigningKey = filepath.Join(identityDir, cfg.Node+events.PrivateKeyExt)
	cfg.Services = []nodeagent.Service{{Name: "orders", ID: "orders-node-k", Address: "127.0.0.1", Port: 9000, Check: nodeagent.Check{Interval: 10 * time.Second, Timeout: 2 * time.Second}}}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, tcfg.Prefix
	cfg.HealthInterval = time.Second
	store := memory.NewStore()
	open := func(context.Context, nodeagent.InterfaceSpec) (registries.Registry, error) {
		return memory.New(store, nil), nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.Listen = lis.Addr().String()
	reg := prometheus.NewRegistry()
	runAgent(ctx, t, cfg, nodeagent.Deps{Open: open, Registry: reg, Listener: lis}, itest.TestLogger(t))
	prod := testProducer(t, brokers, itest.TestLogger(t))
	send := func(s *events.Signer, id string) {
		t.Helper()
		now := time.Now().UTC().Truncate(time.Second)
		cmd := &schema.Resync{Reason: "keyring test", CommandHeader: schema.CommandHeader{NodeID: cfg.Node, CommandID: id, RolloutID: "ro-k", Epoch: 1,
			IssuedAt: now, ExpiresAt: now.Add(time.Minute), PackageDigest: "sha256:" + fmt.Sprintf("%064x", 0)}}
		if _, err := prod.Send(ctx, &events.Encoder{Topics: topics, Source: "test", Signer: s}, cmd); err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string, labels map[string]string) float64 { return itest.Counter(t, reg, name, labels) }
	handled := func(n float64) {
		t.Helper()
		itest.Eventually(t, 30*time.Second, fmt.Sprintf("%v commands handled", n), func() error {
			if got := count("regshift_events_consumed_total", map[string]string{"topic": topics.Commands, "outcome": "handled"}); got != n {
				return fmt.Errorf("%v handled", got)
			}
			return nil
		})
	}
	reloaded := func(n float64) time.Duration {
		t.Helper()
		start, within := time.Now(), 2*events.DefaultKeyringPoll+3*time.Second
		for count("regshift_events_keyring_reloads_total", map[string]string{"outcome": "reloaded"}) < n {
			if time.Since(start) > within {
				t.Fatalf("the keyring folder's change not read within %s", within)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}

	send(oldKey, "c1")
	handled(1)

	// Rotation: the new key is added, then the old one revoked.
	if err := os.Rename(filepath.Join(newDir, "coord-new.pub"), filepath.Join(keysDir, "coord-new.pub")); err != nil {
		t.Fatal(err)
	}
	t.Logf("new key trusted after %s", reloaded(1).Round(time.Millisecond))
	itest.ReplaceFile(t, filepath.Join(keysDir, events.RevokedFile), "coord-old\n")
	t.Logf("old key revoked after %s", reloaded(2).Round(time.Millisecond))
	send(oldKey, "c2")
	itest.Eventually(t, 30*time.Second, "the command of the revoked key refused", func() error {
		if got := count("regshift_events_dead_letters_total", map[string]string{"reason": string(events.ReasonRevokedKey)}); got != 1 {
			return fmt.Errorf("%v refused as revoked", got)
		}
		return nil
	})
	send(newKey, "c3")
	handled(2)
}
