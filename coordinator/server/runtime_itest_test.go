package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// coord is a coordinator replica running in the test process.
type coord struct {
	api    string
	cancel context.CancelFunc
	done   chan error
}

// startCoordinator starts a replica of its own id; edit, when given,
// changes its config first.
func startCoordinator(t *testing.T, env *itest.Env, id string, edit ...func(*server.Config)) *coord {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.ID, cfg.Brokers, cfg.TopicPrefix = id, env.Brokers, env.Prefix
	cfg.SigningKey = filepath.Join(env.KeysDir, "coordinator-itest.key")
	cfg.AcceptUnsigned = true
	cfg.NodeKeysDir = env.NodeKeysDir // the agents' keys: start them first
	cfg.Tick, cfg.RegistryEvery, cfg.CommandPartitions = 200*time.Millisecond, 500*time.Millisecond, 4
	cfg.Security = env.Security(t, itest.PartyCoordinator)
	for _, e := range edit {
		e(&cfg)
	}
	rt, err := server.New(cfg, server.Deps{Registry: prometheus.NewRegistry()}, env.Log.With("replica", id))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &coord{api: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- rt.Serve(ctx, ln) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *coord) stop(t *testing.T) {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("coordinator: %v", err)
		}
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Errorf("coordinator did not stop within 30s:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

func (c *coord) rollout(id string) (coordinator.Rollout, error) {
	var r coordinator.Rollout
	resp, err := http.Get(c.api + "/v1/rollouts/" + id)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET rollout: %s", resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

func (c *coord) awaitPhase(t *testing.T, id string, phase coordinator.Phase) coordinator.Rollout {
	t.Helper()
	var r coordinator.Rollout
	itest.Eventually(t, 3*time.Minute, "rollout "+string(phase), func() error {
		var err error
		if r, err = c.rollout(id); err != nil {
			return err
		}
		if r.Phase != phase {
			last := ""
			if n := len(r.Decisions); n > 0 {
				last = string(r.Decisions[n-1].Decision) + " " + string(r.Decisions[n-1].Check) + " " + r.Decisions[n-1].Detail
			}
			return fmt.Errorf("phase %s wave %d (last decision: %s)", r.Phase, r.Wave+1, last)
		}
		return nil
	})
	return r
}

func plan(env *itest.Env, url, digest string, nodes map[string]string) schema.Plan {
	p := schema.Plan{
		From: schema.Interface{Name: "zookeeper", Kind: "zookeeper", Address: env.ZooKeeper + env.BasePath,
			Package: schema.Package{URL: "file:///unused/zookeeper.tgz", Digest: "sha256:" + fmt.Sprintf("%064d", 0)}},
		To:    schema.Interface{Name: "consul", Kind: "consul", Address: env.Consul, Package: schema.Package{URL: url, Digest: digest}},
		Waves: schema.Waves{Canary: 1, Percentages: []int{100}, MaxInFlight: 2},
		Gates: schema.Gates{AckTimeoutSeconds: 20, SoakSeconds: 1, MinHealthyRatio: 1, MinParity: 0.99, FailureBudget: 0,
			OnFailure: coordinator.OnFailureSwitchBack},
		Finalize: coordinator.FinalizeAutomatic,
	}
	for id, role := range nodes {
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: id, Roles: []string{role}})
	}
	return p
}

// TestRolloutToFinalize runs a real coordinator and four real agents over
// Kafka, ZooKeeper and Consul, from a create-rollout request to finalize.
func TestRolloutToFinalize(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	p1 := env.StartAgent(t, itest.Provider("p1", ordersSvc))
	p2 := env.StartAgent(t, itest.Provider("p2", ordersSvc))
	c1 := env.StartAgent(t, itest.Consumer("c1", ordersSvc))
	c2 := env.StartAgent(t, itest.Consumer("c2", ordersSvc))
	awaitProviders(t, env, ordersSvc, p1, p2)
	co := startCoordinator(t, env, "coord-a")
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"),
		Plan: plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})})

	r := co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	for _, a := range []*itest.Agent{p1, p2} {
		env.AwaitRegistered(t, "consul", ordersSvc, a.ServiceID(ordersSvc), true)
		env.AwaitRegistered(t, "zookeeper", ordersSvc, a.ServiceID(ordersSvc), false)
	}
	for _, a := range []*itest.Agent{c1, c2} {
		res, err := a.Client(t).Resolve(context.Background(), ordersSvc)
		if err != nil || res.Via != "consul" || len(res.Endpoints) != 2 {
			t.Fatalf("%s resolves %+v %v", a.Node, res, err)
		}
	}
	var names []string
	for _, d := range r.Decisions {
		names = append(names, string(d.Decision))
	}
	t.Logf("decisions: %v", names)
}
