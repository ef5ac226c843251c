package itest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/client"
	"github.com/regshift/regshift/schema"
)

// AgentSpec says what a host does.
type AgentSpec struct {
	Node     string
	Role     nodeagent.Role
	Offers   []string // services it registers
	Consumes []string // services it resolves
}

// Provider is a host offering services.
func Provider(node string, services ...string) AgentSpec {
	return AgentSpec{Node: node, Role: nodeagent.RoleProvider, Offers: services}
}

// Consumer is a host resolving services.
func Consumer(node string, services ...string) AgentSpec {
	return AgentSpec{Node: node, Role: nodeagent.RoleConsumer, Consumes: services}
}

// Both is a host that offers and resolves.
func Both(node string, offers, consumes []string) AgentSpec {
	return AgentSpec{Node: node, Role: nodeagent.RoleBoth, Offers: offers, Consumes: consumes}
}

// AgentConfig is the config of an agent for spec in this Env: its state in
// the Env's folder, ZooKeeper as its start interface, the Env's topics and
// coordinator key. Its api.listen is the default: StartAgentWith serves the
// local API on a listener of its own instead.
func (e *Env) AgentConfig(t testing.TB, spec AgentSpec) nodeagent.Config {
	t.Helper()
	c := nodeagent.DefaultConfig()
	c.Node, c.Role = spec.Node, spec.Role
	c.StateDir = filepath.Join(e.Dir, "agents", spec.Node)
	c.Start = nodeagent.StartInterface{Name: "zookeeper", Type: "zookeeper", Address: e.ZooKeeper, BasePath: e.BasePath}
	for _, s := range spec.Offers {
		c.Services = append(c.Services, nodeagent.Service{Name: s, ID: s + "-" + spec.Node, Address: "127.0.0.1", Port: servers.FreePort(t),
			Check: nodeagent.Check{Interval: 10 * time.Second, Timeout: 2 * time.Second}})
	}
	c.Consumes = spec.Consumes
	c.Kafka = e.Kafka(PartyAgent)
	c.Trust.KeysDir, c.Identity.SigningKey = e.KeysDir, e.NodeKey(t, spec.Node)
	c.Fetch.FileRoot = e.Dir // Package writes the Env's packages there
	c.HealthInterval = 250 * time.Millisecond
	return c
}

// NodeKey returns the private key file of node's agent, making the key
// pair on first use: <Dir>/identity/<node>.key, its public key copied into
// NodeKeysDir for a coordinator to trust. A coordinator reads NodeKeysDir
// as it starts and a change within seconds: make the keys (start the
// agents) first, or an agent's first events may come before its key is
// read.
func (e *Env) NodeKey(t testing.TB, node string) string {
	t.Helper()
	dir := filepath.Join(e.Dir, "identity")
	priv := filepath.Join(dir, node+events.PrivateKeyExt)
	if _, err := os.Stat(priv); err == nil {
		return priv
	}
	KeyPair(t, dir, node)
	Enrol(t, dir, node, e.NodeKeysDir)
	return priv
}

// Agent is an agent running in this test's process.
type Agent struct {
	Node   string
	Config nodeagent.Config
	env    *Env
	cancel context.CancelFunc
	done   chan error
}

// StartAgent runs an agent for spec until the test ends.
func (e *Env) StartAgent(t testing.TB, spec AgentSpec) *Agent {
	t.Helper()
	return e.StartAgentWith(t, e.AgentConfig(t, spec))
}

// StartAgentWith runs an agent with a given config; its local API listens
// on a loopback port the system picks, and Config.API.Listen says which.
func (e *Env) StartAgentWith(t testing.TB, cfg nodeagent.Config) *Agent {
	t.Helper()
	a := &Agent{Node: cfg.Node, Config: cfg, env: e}
	a.start(t)
	t.Cleanup(func() { a.Stop(t) })
	return a
}

func (a *Agent) start(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("agent %s: %v", a.Node, err)
	}
	a.Config.API.Listen = lis.Addr().String()
	ag, err := nodeagent.NewAgent(a.Config, nodeagent.Deps{Listener: lis}, a.env.Log)
	if err != nil {
		lis.Close()
		t.Fatalf("agent %s: %v", a.Node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan error, 1)
	go func() { a.done <- ag.Run(ctx) }()
	Eventually(t, 30*time.Second, "agent "+a.Node+" API", func() error {
		_, err := a.Client(t).Status(context.Background())
		return err
	})
}

// Stop stops the agent gracefully (it deregisters, as configured).
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("agent %s stopped with %v", a.Node, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("agent %s did not stop within 30s", a.Node)
	}
}

// Restart stops and starts the agent on the same state folder.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	a.Stop(t)
	a.start(t)
}

// Client is the agent's local API client.
func (a *Agent) Client(t testing.TB) *client.Client { return newClient(t, a.Config.API.Listen) }

type clientT = client.Client

func newClient(t testing.TB, addr string) *client.Client {
	t.Helper()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServiceID is the instance id of an offered service on this agent.
func (a *Agent) ServiceID(service string) string { return service + "-" + a.Node }

// Install is an install command for this agent of a Consul-type interface.
func (a *Agent) Install(id, iface, url, digest string) *schema.Install {
	return a.env.Install(a.Node, id, iface, url, digest)
}

// Activate is an activate command for this agent.
func (a *Agent) Activate(id, iface string) *schema.Activate { return a.env.Activate(a.Node, id, iface) }

// SwitchBack is a switch-back command for this agent.
func (a *Agent) SwitchBack(id, from, to string) *schema.SwitchBack {
	return a.env.SwitchBack(a.Node, id, from, to)
}

// Uninstall is an uninstall command for this agent.
func (a *Agent) Uninstall(id, iface string) *schema.Uninstall {
	return a.env.Uninstall(a.Node, id, iface)
}

// Install is an install command for node of a Consul-type interface.
func (e *Env) Install(node, id, iface, url, digest string) *schema.Install {
	h := e.Header(node, id, 1)
	h.PackageDigest = digest
	return &schema.Install{CommandHeader: h, Interface: schema.Interface{Name: iface, Kind: "consul", Address: e.Consul,
		Package: schema.Package{URL: url, Digest: digest}}}
}

// Activate is an activate command for node.
func (e *Env) Activate(node, id, iface string) *schema.Activate {
	return &schema.Activate{CommandHeader: e.Header(node, id, 1), Interface: iface}
}

// SwitchBack is a switch-back command for node.
func (e *Env) SwitchBack(node, id, from, to string) *schema.SwitchBack {
	return &schema.SwitchBack{CommandHeader: e.Header(node, id, 1), From: from, To: to, Reason: "itest"}
}

// Uninstall is an uninstall command for node.
func (e *Env) Uninstall(node, id, iface string) *schema.Uninstall {
	return &schema.Uninstall{CommandHeader: e.Header(node, id, 1), Interface: iface}
}
