package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/zookeeper"
	"github.com/regshift/regshift/schema"
)

// selfRegistered registers, in the test's ZooKeeper base path, an instance
// no node agent wrote (no regshift-node metadata): a Java service using
// Curator itself. Closing the returned client ends its session, as the
// service dying would.
func selfRegistered(t *testing.T, env *itest.Env, service, id string, port int) *zookeeper.Client {
	t.Helper()
	cfg := zookeeper.DefaultConfig(env.ZooKeeper)
	cfg.BasePath = env.BasePath
	c, err := zookeeper.New(cfg, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(context.Background(), registries.Instance{Service: service, ID: id, Address: "127.0.0.1", Port: port}); err != nil {
		t.Fatal(err)
	}
	return c
}

// unownedFleet is a provider p1 and a consumer c1 with their agents, the
// self-registered java-1 beside p1 in ZooKeeper, and their plan.
func unownedFleet(t *testing.T) (*itest.Env, string, schema.Plan, *itest.Agent, *zookeeper.Client) {
	t.Helper()
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	p1 := env.StartAgent(t, itest.Provider("p1", ordersSvc))
	env.StartAgent(t, itest.Consumer("c1", ordersSvc))
	awaitProviders(t, env, ordersSvc, p1)
	java := selfRegistered(t, env, ordersSvc, "java-1", 9301)
	return env, ordersSvc, plan(env, url, digest, map[string]string{"p1": "provider", "c1": "consumer"}), p1, java
}

func (c *coord) awaitDecision(t *testing.T, id string, kind schema.DecisionKind) coordinator.Decision {
	t.Helper()
	var d coordinator.Decision
	itest.Eventually(t, 2*time.Minute, "decision "+string(kind), func() error {
		r, err := c.rollout(id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(r.Decisions, func(d coordinator.Decision) bool { return d.Decision == kind })
		if i < 0 {
			return fmt.Errorf("phase %s, no %s decision yet", r.Phase, kind)
		}
		d = r.Decisions[i]
		return nil
	})
	return d
}

// TestUnownedKeepBridge: a service instance in ZooKeeper that no node of
// the plan registered is named before finalize; under unowned: keep-bridge
// the rollout finalizes and the bridge keeps mirroring: when the instance
// dies after finalize it disappears from Consul, a new one appears; a
// second finalize ends the bridge and removes its mirrors.
func TestUnownedKeepBridge(t *testing.T) {
	env, ordersSvc, p, p1, java := unownedFleet(t)

	co := startCoordinator(t, env, "coord-u")
	p.Unowned = schema.UnownedKeepBridge
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})
	if d := co.awaitDecision(t, env.RolloutID, schema.DecisionPrepared); !strings.Contains(d.Detail, ordersSvc+": java-1") {
		t.Fatalf("prepared %q: want java-1 named as unowned", d.Detail)
	}
	r := co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	if !r.BridgeKept {
		t.Fatalf("finalized without keeping the bridge: %+v", r.Decisions)
	}
	env.AwaitRegistered(t, "consul", ordersSvc, "java-1", true)
	env.AwaitRegistered(t, "consul", ordersSvc, p1.ServiceID(ordersSvc), true)

	_ = java.Close() // the Java service dies after finalize
	env.AwaitRegistered(t, "consul", ordersSvc, "java-1", false)
	selfRegistered(t, env, ordersSvc, "java-2", 9302) // and a new one starts
	env.AwaitRegistered(t, "consul", ordersSvc, "java-2", true)

	env.Request(t, nil, &schema.Finalize{RequestHeader: env.RequestHeader("req-2")})
	co.awaitDecision(t, env.RolloutID, schema.DecisionBridgeEnded)
	env.AwaitRegistered(t, "consul", ordersSvc, "java-2", false)
	env.AwaitRegistered(t, "consul", ordersSvc, p1.ServiceID(ordersSvc), true) // p1 registers itself
}

// TestUnownedRefuse: under unowned: refuse (the default) finalize waits,
// naming the unowned instance, and goes ahead once it is gone.
func TestUnownedRefuse(t *testing.T) {
	env, ordersSvc, p, _, java := unownedFleet(t)

	co := startCoordinator(t, env, "coord-r")
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})
	d := co.awaitDecision(t, env.RolloutID, schema.DecisionFinalizeRefused)
	if d.Check != schema.CheckUnowned || !strings.Contains(d.Detail, ordersSvc+": java-1") {
		t.Fatalf("refusal %+v: want java-1 named", d)
	}
	if r, err := co.rollout(env.RolloutID); err != nil || r.Phase != schema.PhaseCommitted {
		t.Fatalf("phase %s (%v): want committed while java-1 exists", r.Phase, err)
	}
	_ = java.Close()
	r := co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	if r.BridgeKept {
		t.Fatal("bridge kept under refuse")
	}
	env.AwaitRegistered(t, "consul", ordersSvc, "java-1", false)
}
