package nodeagent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

func mustDone(t *testing.T, ack schema.Ack) {
	t.Helper()
	if ack.Outcome != schema.AckDone {
		t.Fatalf("command %s: %s %s", ack.CommandID, ack.Outcome, ack.Reason)
	}
}

// resolvesVia waits until the agent's local API answers service through iface.
func resolvesVia(t *testing.T, a *itest.Agent, service, iface string, n int) agentapi.Resolution {
	t.Helper()
	var got agentapi.Resolution
	itest.Eventually(t, 30*time.Second, service+" via "+iface, func() error {
		r, err := a.Client(t).Resolve(context.Background(), service)
		if err != nil {
			return err
		}
		got = r
		if r.Via != iface || len(r.Endpoints) != n {
			return fmt.Errorf("resolves %d via %s", len(r.Endpoints), r.Via)
		}
		return nil
	})
	return got
}

// TestAgentLifecycle drives one host that offers orders and consumes
// payments through install -> activate -> switch back -> activate ->
// uninstall of ZooKeeper, over the real broker, checking ZooKeeper and
// Consul directly and what the local API resolves after each step.
func TestAgentLifecycle(t *testing.T) {
	env := itest.New(t)
	ordersSvc, paymentsSvc := env.Service("orders"), env.Service("payments")
	ctx := context.Background()
	pay := registries.Instance{Service: paymentsSvc, ID: "pay-1", Address: "127.0.0.1", Port: 9000}
	for _, reg := range []string{"zookeeper", "consul"} { // a provider already there, mirrored by the bridge
		if err := env.Registry(reg).Register(ctx, pay); err != nil {
			t.Fatal(err)
		}
	}
	a := env.StartAgent(t, itest.Both("node-1", []string{ordersSvc}, []string{paymentsSvc}))
	orders := a.ServiceID(ordersSvc)
	env.AwaitHello(t, a.Node, time.Now().Add(-time.Minute))
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	if env.Registered(t, "consul", ordersSvc, orders) {
		t.Fatal("registered in Consul before any command")
	}
	resolvesVia(t, a, paymentsSvc, "zookeeper", 1)

	url, digest := env.ConsulPackage(t)
	env.Send(t, a.Install("c1", "consul", url, digest))
	mustDone(t, env.AwaitAck(t, a.Node, "c1"))

	env.Send(t, a.Activate("c2", "consul"))
	mustDone(t, env.AwaitAck(t, a.Node, "c2"))
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	resolvesVia(t, a, paymentsSvc, "consul", 1)
	env.AwaitHealth(t, a.Node, "consul passing on node-1", func(h schema.Health) bool {
		for _, i := range h.Interfaces {
			if i.Name == "consul" && i.Status == schema.HealthPassing && i.State == "active" && i.Resolved == 1 {
				return true
			}
		}
		return false
	})

	env.Send(t, a.SwitchBack("c3", "consul", "zookeeper"))
	mustDone(t, env.AwaitAck(t, a.Node, "c3"))
	env.AwaitRegistered(t, "consul", ordersSvc, orders, false)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	resolvesVia(t, a, paymentsSvc, "zookeeper", 1)

	env.Send(t, a.Activate("c4", "consul"))
	mustDone(t, env.AwaitAck(t, a.Node, "c4"))
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	resolvesVia(t, a, paymentsSvc, "consul", 1)

	env.Send(t, a.Uninstall("c5", "zookeeper"))
	mustDone(t, env.AwaitAck(t, a.Node, "c5"))
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, false)
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	st, err := a.Client(t).Status(ctx)
	if err != nil || st.Primary != "consul" || st.Fallback != "" || st.LastCommand != "c5" {
		t.Fatalf("status %+v %v", st, err)
	}

	// Restart: state, registrations and routing come back; hello says so.
	before := time.Now()
	a.Restart(t)
	hello := env.AwaitHello(t, a.Node, before)
	if hello.LastCommandID != "c5" || hello.HighestEpoch != 1 {
		t.Fatalf("hello after restart: %+v", hello)
	}
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	resolvesVia(t, a, paymentsSvc, "consul", 1)
	if env.Registered(t, "zookeeper", ordersSvc, orders) {
		t.Fatal("the restarted agent registered in the uninstalled ZooKeeper")
	}
}

// TestAgentRefusals sends a duplicate, a forged, an expired, a wrongly
// addressed and a stale-epoch command, and packages with a wrong digest
// and with a path escaping the state folder: each verified one is answered
// with its reason, the forged one is not answered at all, and none changes
// the host.
func TestAgentRefusals(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	a := env.StartAgent(t, itest.Provider("node-r", ordersSvc))
	env.AwaitHello(t, a.Node, time.Now().Add(-time.Minute))
	url, digest := env.ConsulPackage(t)

	env.Send(t, a.Install("i1", "consul", url, digest))
	mustDone(t, env.AwaitAck(t, a.Node, "i1"))
	env.Send(t, a.Install("i1", "consul", url, digest)) // re-sent
	itest.Eventually(t, 30*time.Second, "duplicate re-acked", func() error {
		for _, ack := range env.Acks(a.Node, "i1") {
			if ack.Outcome == schema.AckDone && ack.Reason == nodeagent.ReasonDuplicate {
				return nil
			}
		}
		return fmt.Errorf("acks %v", env.Acks(a.Node, "i1"))
	})

	_, forgedKey, _ := ed25519.GenerateKey(rand.Reader)
	forger, err := events.NewSigner("coordinator-itest", forgedKey) // the trusted key id, another key
	if err != nil {
		t.Fatal(err)
	}
	env.SendWith(t, env.Encoder(forger), a.Activate("forged", "consul"))

	expired := a.Activate("expired", "consul")
	expired.IssuedAt, expired.ExpiresAt = time.Now().Add(-2*time.Hour).UTC(), time.Now().Add(-time.Hour).UTC()
	env.Send(t, expired)

	other := a.Activate("other", "consul")
	other.NodeID = "node-elsewhere"
	rec, err := env.Encoder(env.Signer).Encode(other)
	if err != nil {
		t.Fatal(err)
	}
	// On this node's partition with this node's key and partitionkey, but
	// addressed to another node in the signed body.
	rec.Key = []byte(a.Node)
	for i, h := range rec.Headers {
		if h.Key == "partitionkey" {
			rec.Headers[i].Value = []byte(a.Node)
		}
	}
	env.SendRecord(t, rec)

	// An epoch-2 command raises the epoch; then epoch 1 is stale.
	env.Send(t, &schema.Resync{CommandHeader: env.Header(a.Node, "e2", 2)})
	mustDone(t, env.AwaitAck(t, a.Node, "e2"))
	env.Send(t, a.Activate("stale", "consul")) // epoch 1

	bad := a.Install("baddigest", "etcd", url, "sha256:"+strings.Repeat("0", 64))
	bad.Epoch = 2
	env.Send(t, bad)

	escape := filepath.Join(env.Dir, "escaped")
	evilURL, evilDigest := evilPackage(t, env.Dir)
	evil := a.Install("evil", "consul2", evilURL, evilDigest)
	evil.Epoch = 2
	env.Send(t, evil)

	type answer struct {
		outcome schema.AckOutcome
		reason  string
	}
	want := map[string]answer{
		"expired":   {schema.AckRejected, string(events.ReasonExpired)},
		"other":     {schema.AckRejected, string(events.ReasonWrongNode)},
		"stale":     {schema.AckRejected, string(events.ReasonStaleEpoch)},
		"baddigest": {schema.AckFailed, nodeagent.ReasonDigestMismatch},
		"evil":      {schema.AckFailed, nodeagent.ReasonPackageRefused},
	}
	for id, w := range want {
		ack := env.AwaitAck(t, a.Node, id)
		if ack.Outcome != w.outcome || !strings.HasPrefix(ack.Reason, w.reason) {
			t.Errorf("%s: acked %s %q, want %s %s", id, ack.Outcome, ack.Reason, w.outcome, w.reason)
		}
	}
	// The forged command came before the expired one on the partition.
	if acks := env.Acks(a.Node, "forged"); len(acks) > 0 {
		t.Errorf("the forged command was answered: %+v", acks)
	}
	if _, err := os.Stat(escape); !os.IsNotExist(err) {
		t.Fatalf("the evil package wrote outside the state folder: %v", err)
	}
	st, err := a.Client(t).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Primary != "zookeeper" || st.Epoch != 2 {
		t.Fatalf("refused commands changed the host: %+v", st)
	}
	for _, in := range st.Interfaces {
		if in.Name != "zookeeper" && in.Name != "consul" {
			t.Fatalf("a refused package left interface %+v", in)
		}
	}
}

// evilPackage writes a package whose second entry climbs out of the state
// folder to dir/escaped.
func evilPackage(t *testing.T, dir string) (url, digest string) {
	t.Helper()
	pkg := itest.RawPackage(t, map[string]string{
		"manifest.yaml": "apiVersion: regshift.io/v1\nkind: InterfacePackage\ninterface: consul2\ntype: consul\nversion: \"1\"\nsettings: {address: \"127.0.0.1:8500\"}\n",
		"../../../../../../../../../../" + strings.TrimPrefix(filepath.Join(dir, "escaped"), "/"): "gotcha",
	})
	p := filepath.Join(dir, "evil.tgz")
	if err := os.WriteFile(p, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + p, digestOf(pkg)
}
