package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/schema"
)

// packageCheckTTL is the checkTTL of the interface package
// itest.Env.ConsulPackage builds: the TTL of every provider's check.
const packageCheckTTL = 5 * time.Second

// TestConsumerProbeCatchesWrongAddresses: Consul returns the providers with
// a wrong port — a registration bug at the registry, not in regshift: same
// ids, same passing checks, so a consumer's own parity (instance ids) stays
// 1.0. The coordinator's parity gate compares endpoints and would catch it
// too; it is off here (min_parity 0), so only the consumer canary's probes
// can tell. They connect to what Consul
// resolves (refused) and to what ZooKeeper resolves (accepted); the canary
// turns critical on consul, the gate fails and every touched node goes back
// to ZooKeeper, the decision naming the canary, the service and the wrong
// address.
func TestConsumerProbeCatchesWrongAddresses(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	cc, err := api.NewClient(&api.Config{Address: env.Consul})
	if err != nil {
		t.Fatal(err)
	}
	p1 := startListeningProvider(t, env, "p1", ordersSvc)
	p2 := startListeningProvider(t, env, "p2", ordersSvc)
	c1 := env.StartAgent(t, itest.Consumer("c1", ordersSvc))
	c2 := env.StartAgent(t, itest.Consumer("c2", ordersSvc))
	agents := []*itest.Agent{p1, p2, c1, c2}
	awaitProviders(t, env, ordersSvc, p1, p2)
	co := startCoordinator(t, env, "coord-a")
	// Waves: p1, p2, c1 (the consumer canary), c2. The soak leaves the
	// pause below ample time to land before wave 2's gate. The registry-wide
	// parity gate compares endpoints (id, address, port), so it would fail
	// wave 2 on the wrong ports before any consumer moved: min_parity 0
	// turns it off, leaving the canary's probe the only one to see them (a
	// consumer's own parity compares ids, and stays 1).
	p := plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})
	p.Gates.SoakSeconds, p.Gates.MinParity = 10, 0
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})

	// Both providers active, so registered in Consul by their own agents;
	// hold the rollout there so the canary activates only after the bug.
	awaitRollout(t, co.api, env.RolloutID, "p2 active", func(r *coordinator.Rollout) bool {
		return r.Node("p2").Reached == schema.ReachedActive
	})
	env.Request(t, nil, &schema.Pause{RequestHeader: env.RequestHeader("req-2")})
	awaitRollout(t, co.api, env.RolloutID, "paused", func(r *coordinator.Rollout) bool { return r.Paused })
	r, err := co.rollout(env.RolloutID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Wave != 1 || r.Node("c1").Touched {
		t.Fatalf("paused in wave %d, c1 touched %v: the pause landed after the provider waves", r.Wave+1, r.Node("c1").Touched)
	}

	wrong := closedPort(t)
	for _, a := range []*itest.Agent{p1, p2} {
		env.AwaitRegistered(t, "consul", ordersSvc, a.ServiceID(ordersSvc), true)
		misregister(t, cc, ordersSvc, a.ServiceID(ordersSvc), wrong)
	}
	itest.Eventually(t, time.Minute, "consul resolves the wrong port", func() error {
		got, err := env.Registry("consul").Resolve(context.Background(), ordersSvc)
		if err != nil {
			return err
		}
		if len(got) != 2 || got[0].Port != wrong || got[1].Port != wrong {
			return fmt.Errorf("consul resolves %+v", got)
		}
		return nil
	})
	env.Request(t, nil, &schema.Resume{RequestHeader: env.RequestHeader("req-3")})

	r = co.awaitPhase(t, env.RolloutID, schema.PhaseSwitchedBack)
	var passed []string
	var sb *coordinator.Decision
	for i, d := range r.Decisions {
		switch d.Decision {
		case schema.DecisionWavePassed:
			passed = append(passed, d.Detail)
		case schema.DecisionSwitchBack:
			sb = &r.Decisions[i]
		}
	}
	if len(passed) != 2 || !strings.Contains(passed[1], "wave 2 of 4 (provider)") {
		t.Fatalf("waves passed: %q; want the two provider waves only", passed)
	}
	if sb == nil {
		t.Fatalf("no switch-back decision: %+v", r.Decisions)
	}
	t.Logf("decision: %s %s nodes %v: %s", sb.Decision, sb.Check, sb.Nodes, sb.Detail)
	addr := fmt.Sprintf("127.0.0.1:%d", wrong)
	if sb.Check == schema.CheckParity || !slices.Equal(sb.Nodes, []string{"c1"}) || !strings.Contains(sb.Detail, "c1: ") {
		t.Fatalf("switch-back on %s naming %v: want the consumer canary c1 alone", sb.Check, sb.Nodes)
	}
	for _, want := range []string{"consumer probe", ordersSvc, addr} {
		if !strings.Contains(sb.Detail, want) {
			t.Fatalf("switch-back detail %q lacks %q", sb.Detail, want)
		}
	}

	// Every touched node is back on ZooKeeper; c2, after the canary, was
	// never touched.
	for _, n := range r.Nodes {
		if want := n.ID != "c2"; (n.Reached == schema.ReachedSwitchedBack) != want || n.Touched != want {
			t.Fatalf("%s: reached %q touched %v", n.ID, n.Reached, n.Touched)
		}
	}
	for _, a := range agents {
		st, err := a.Client(t).Status(context.Background())
		if err != nil || st.Primary != "zookeeper" {
			t.Fatalf("%s after switch-back: %+v %v", a.Node, st, err)
		}
	}

	// Nothing of the service is left in Consul: the providers deregistered
	// (the rewritten services share their ids), the bridge removed its
	// mirrors.
	for _, a := range agents {
		a.Stop(t)
	}
	itest.Eventually(t, time.Minute, ordersSvc+" gone from consul", func() error {
		left, _, err := cc.Catalog().Service(ordersSvc, "", nil)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("%d left, first %s on node %s", len(left), left[0].ServiceID, left[0].Node)
		}
		return nil
	})
}

// startListeningProvider starts a provider of service whose service port
// accepts TCP: a consumer's probe through ZooKeeper must find it working.
func startListeningProvider(t *testing.T, env *itest.Env, node, service string) *itest.Agent {
	t.Helper()
	cfg := env.AgentConfig(t, itest.Provider(node, service))
	cfg.Services[0].Port = acceptor(t)
	return env.StartAgentWith(t, cfg)
}

// acceptor listens on a loopback port, accepting and closing every
// connection until the test ends, and returns the port.
func acceptor(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort is a loopback port nothing listens on: one the system gave a
// listener of ours, closed again.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// misregister registers the agent service that a provider's agent wrote
// for instance id again, straight at the Consul agent, the same in all but
// its port: same id, name, address, tags, metadata, and the same TTL check,
// passing, which the provider's agent goes on keeping alive. The service
// is deregistered when the test ends.
func misregister(t *testing.T, cc *api.Client, service, id string, port int) {
	t.Helper()
	sid := service + ":" + id
	cid := "regshift:" + sid
	svc, _, err := cc.Agent().Service(sid, nil)
	if err != nil {
		t.Fatalf("read %s: %v", sid, err)
	}
	checks, err := cc.Agent().ChecksWithFilter(fmt.Sprintf("CheckID == %q", cid))
	if err != nil || checks[cid] == nil {
		t.Fatalf("read check %s: %v %v", cid, checks, err)
	}
	reg := &api.AgentServiceRegistration{
		ID: svc.ID, Name: svc.Service, Address: svc.Address, Port: port, Tags: svc.Tags, Meta: svc.Meta,
		Check: &api.AgentServiceCheck{
			CheckID: cid, Name: checks[cid].Name, TTL: packageCheckTTL.String(), Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: consul.DefaultConfig().DeregisterCriticalAfter.String(),
		},
	}
	t.Cleanup(func() {
		var se api.StatusError
		if err := cc.Agent().ServiceDeregister(sid); err != nil && !(errors.As(err, &se) && se.Code == http.StatusNotFound) {
			t.Errorf("deregister %s: %v", sid, err)
		}
	})
	if err := cc.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}); err != nil {
		t.Fatalf("register %s on port %d: %v", sid, port, err)
	}
}
