package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestFailingGateSwitchesBack: the new Consul dies during the consumer
// wave; the gate fails, every touched node goes back to ZooKeeper
// (consumers first), the providers stay registered there throughout, and
// the decision records its inputs.
func TestFailingGateSwitchesBack(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	consul := servers.StartPrivate(t, servers.Consul)
	url, digest := env.Package(t, "consul", fmt.Sprintf("apiVersion: regshift.io/v1\nkind: InterfacePackage\ninterface: consul\ntype: consul\nversion: \"1.14\"\nsettings: {address: %q, options: {checkTTL: 3s}}\n", consul.Addr()))
	env.Digest = digest
	p1 := env.StartAgent(t, itest.Provider("p1", ordersSvc))
	c1 := env.StartAgent(t, itest.Consumer("c1", ordersSvc))
	c2 := env.StartAgent(t, itest.Consumer("c2", ordersSvc))
	env.AwaitRegistered(t, "zookeeper", ordersSvc, p1.ServiceID(ordersSvc), true)
	co := startCoordinator(t, env, "coord-a")
	p := plan(env, url, digest, map[string]string{"p1": "provider", "c1": "consumer", "c2": "consumer"})
	p.To.Address = consul.Addr()
	p.Gates.SoakSeconds = 2
	p.Gates.AckTimeoutSeconds = 10
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})

	itest.Eventually(t, 2*time.Minute, "consumer wave", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil {
			return err
		}
		if r.Phase != schema.PhaseRolling || r.Waves[r.Wave].Role != schema.RoleConsumer {
			return fmt.Errorf("phase %s wave %d", r.Phase, r.Wave+1)
		}
		return nil
	})
	consul.Kill(t) // the new registry dies under the consumer canary

	r := co.awaitPhase(t, env.RolloutID, schema.PhaseSwitchedBack)
	var sb *coordinator.Decision
	for i, d := range r.Decisions {
		if d.Decision == schema.DecisionSwitchBack {
			sb = &r.Decisions[i]
		}
	}
	if sb == nil || sb.Observed == nil || sb.Threshold == nil || len(sb.Nodes) == 0 || !breaks(sb) {
		t.Fatalf("switch-back decision without its inputs: %+v\n%+v", sb, r.Decisions)
	}
	t.Logf("decision: %s %s observed %.2f threshold %.2f nodes %v: %s", sb.Decision, sb.Check, *sb.Observed, *sb.Threshold, sb.Nodes, sb.Detail)
	for _, a := range []*itest.Agent{p1, c1, c2} {
		st, err := a.Client(t).Status(context.Background())
		if err != nil || st.Primary != "zookeeper" {
			t.Fatalf("%s after switch-back: %+v %v", a.Node, st, err)
		}
	}
	env.AwaitRegistered(t, "zookeeper", ordersSvc, p1.ServiceID(ordersSvc), true)
	res, err := c1.Client(t).Resolve(context.Background(), ordersSvc)
	if err != nil || res.Via != "zookeeper" || len(res.Endpoints) != 1 {
		t.Fatalf("c1 resolves %+v %v", res, err)
	}
	// Every touched node was switched back; c2, after the canary, was never
	// touched.
	for _, n := range r.Nodes {
		if want := n.ID != "c2"; (n.Reached == schema.ReachedSwitchedBack) != want || n.Touched != want {
			t.Fatalf("%s: reached %q touched %v", n.ID, n.Reached, n.Touched)
		}
	}
}

// TestLeaderFailover runs two replicas; the leader is stopped mid-rollout,
// the standby takes over with a higher epoch, replays the state and
// completes; no agent carries out a command twice; and a command from the
// old epoch is refused by the agents.
func TestLeaderFailover(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	agents := startFleet(t, env, ordersSvc)
	replicas := []*coord{startCoordinator(t, env, "coord-a"), startCoordinator(t, env, "coord-b")}
	leader := func() (*coord, *coord, error) {
		for i, c := range replicas {
			if leads(c, true) == nil {
				return c, replicas[1-i], nil
			}
		}
		return nil, nil, fmt.Errorf("no replica leads")
	}
	var lead, standby *coord
	itest.Eventually(t, time.Minute, "one replica leads", func() (err error) {
		lead, standby, err = leader()
		return err
	})
	p := plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})
	p.Gates.SoakSeconds = 2
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})

	itest.Eventually(t, 2*time.Minute, "wave 2 on the leader", func() error {
		var err error
		if lead, standby, err = leader(); err != nil {
			return err
		}
		r, err := lead.rollout(env.RolloutID)
		if err != nil {
			return err
		}
		if r.Wave < 1 {
			return fmt.Errorf("wave %d", r.Wave+1)
		}
		return nil
	})
	if err := leads(standby, false); err != nil {
		t.Fatalf("two leaders at once: %v", err)
	}
	lead.stop(t) // the leader goes away mid-rollout

	r := standby.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	if r.Epoch < 2 {
		t.Fatalf("coord-b finished with epoch %d", r.Epoch)
	}
	for id, ag := range agents {
		for _, kind := range []string{"install", "activate", "uninstall"} {
			if n := appliedCount(t, ag, kind); n != 1 {
				t.Fatalf("%s carried out %s %d times", id, kind, n)
			}
		}
	}
	// A zombie of the old leader sends a command with its epoch: refused.
	zombie := env.Activate("p1", "zombie-1", "consul")
	zombie.Epoch = 1
	env.Send(t, zombie)
	if ack := env.AwaitAck(t, "p1", "zombie-1"); ack.Outcome != schema.AckRejected || !strings.HasPrefix(ack.Reason, "stale-epoch") {
		t.Fatalf("old-epoch command acked %+v", ack)
	}
}

// breaks reports whether a decision's observation breaks its threshold.
func breaks(d *coordinator.Decision) bool {
	if d.Check == schema.CheckFailureBudget {
		return *d.Observed > *d.Threshold
	}
	return *d.Observed < *d.Threshold
}

func leads(c *coord, want bool) error {
	resp, err := http.Get(c.api + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), `"leader": true`) != want {
		return fmt.Errorf("healthz %s", b)
	}
	return nil
}

// appliedCount reads the agent's metric of commands of a kind it carried out.
func appliedCount(t *testing.T, a *itest.Agent, kind string) int {
	t.Helper()
	resp, err := http.Get("http://" + a.Config.API.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf(`regshift_agent_commands_total{kind=%q,outcome="done"} `, kind)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, want); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// TestOperatorRequests steers a real rollout with pause, resume and abort
// requests over Kafka: paused sends nothing new, resume goes on, abort
// switches every touched node back.
func TestOperatorRequests(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	p1 := env.StartAgent(t, itest.Provider("p1", ordersSvc))
	p2 := env.StartAgent(t, itest.Provider("p2", ordersSvc))
	c1 := env.StartAgent(t, itest.Consumer("c1", ordersSvc))
	awaitProviders(t, env, ordersSvc, p1, p2)
	co := startCoordinator(t, env, "coord-a")
	pl := plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer"})
	pl.Gates.SoakSeconds = 3
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: pl})
	itest.Eventually(t, time.Minute, "p1 active", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil {
			return err
		}
		if n := r.Node("p1"); n == nil || n.Reached != schema.ReachedActive {
			return fmt.Errorf("p1 not active yet")
		}
		return nil
	})
	env.Request(t, nil, &schema.Pause{RequestHeader: env.RequestHeader("req-2")})
	itest.Eventually(t, 30*time.Second, "paused", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil || !r.Paused {
			return fmt.Errorf("not paused (%v)", err)
		}
		return nil
	})
	// Wait, by the coordinator's own clock, past the end of the canary's
	// soak: a paused rollout must not move on to p2.
	pausedAt := time.Time{}
	itest.Eventually(t, 30*time.Second, "the soak passed while paused", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil {
			return err
		}
		if pausedAt.IsZero() {
			pausedAt = r.Now
		}
		if r.Node("p2").Touched {
			t.Fatalf("a paused rollout sent p2 a command: %+v", r.Node("p2"))
		}
		if r.Now.Sub(pausedAt) < time.Duration(pl.Gates.SoakSeconds+2)*time.Second {
			return fmt.Errorf("coordinator clock at %s", r.Now.Sub(pausedAt))
		}
		return nil
	})
	env.Request(t, nil, &schema.Resume{RequestHeader: env.RequestHeader("req-3")})
	itest.Eventually(t, time.Minute, "p2 touched after resume", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil || !r.Node("p2").Touched {
			return fmt.Errorf("p2 untouched (%v)", err)
		}
		return nil
	})
	env.Request(t, nil, &schema.Abort{RequestHeader: env.RequestHeader("req-4")})
	r := co.awaitPhase(t, env.RolloutID, schema.PhaseSwitchedBack)
	for _, a := range []*itest.Agent{p1, p2, c1} {
		st, err := a.Client(t).Status(context.Background())
		if err != nil || st.Primary != "zookeeper" {
			t.Fatalf("%s after abort: %+v %v", a.Node, st, err)
		}
	}
	var names []string
	for _, d := range r.Decisions {
		names = append(names, string(d.Decision))
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "paused") || !strings.Contains(got, "resumed") || !strings.Contains(got, "aborted") {
		t.Fatalf("decisions %s", got)
	}
}

// startFleet starts providers p1, p2 and consumers c1, c2 of service and
// waits until the providers are registered.
func startFleet(t *testing.T, env *itest.Env, service string) map[string]*itest.Agent {
	t.Helper()
	agents := map[string]*itest.Agent{
		"p1": env.StartAgent(t, itest.Provider("p1", service)),
		"p2": env.StartAgent(t, itest.Provider("p2", service)),
		"c1": env.StartAgent(t, itest.Consumer("c1", service)),
		"c2": env.StartAgent(t, itest.Consumer("c2", service)),
	}
	awaitProviders(t, env, service, agents["p1"], agents["p2"])
	return agents
}

// awaitProviders waits until the providers' instances are in ZooKeeper.
// An agent registers after it starts; a rollout created before that would
// find a service the bridge does not mirror until its next full sync (new
// services are picked up only then), and the gate would read the missing
// mirrors as a parity failure.
func awaitProviders(t *testing.T, env *itest.Env, service string, providers ...*itest.Agent) {
	t.Helper()
	for _, a := range providers {
		env.AwaitRegistered(t, "zookeeper", service, a.ServiceID(service), true)
	}
}
