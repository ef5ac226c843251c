package containers

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/zookeeper"
	"github.com/regshift/regshift/schema"
)

// In-container paths the Stack's coordinator and agents use.
const (
	keyID        = "coordinator-containers"
	keysDir      = "/etc/regshift/keys"
	nodeKeysDir  = "/etc/regshift/nodes"    // the coordinator's: one <node>.pub per agent
	identityDir  = "/etc/regshift/identity" // an agent's: its <node>.key
	packagesDir  = "/var/lib/regshift/packages"
	basePath     = "/services"
	agentState   = "/var/lib/regshift-agent"
	consulPkgURL = "/packages/consul.tgz"
)

// Stack is a whole regshift world in containers: Kafka, ZooKeeper and Consul,
// the topics, a coordinator key pair, a producer for requests, and read-only
// registry clients to assert on. Start the coordinator and agents with
// StartCoordinator and StartAgent.
type Stack struct {
	Kafka     *Kafka
	ZooKeeper *ZooKeeper
	Consul    *Consul
	Prefix    string
	Topics    events.Topics
	Dir       string // host folder: keys, packages
	// ZK and Cons read the registries (ZooKeeper under basePath).
	ZK, Cons registries.Registry

	privKey, pubKey string // host paths
	producer        *events.Producer
	consulPkg       string // host path of consul.tgz
	ConsulDigest    string
	coordinatorPort int
}

// StartStack starts Kafka, ZooKeeper and Consul containers in parallel and
// prepares the rest.
func StartStack(t testing.TB) *Stack {
	t.Helper()
	servers.RequireDocker(t) // once, before the helpers run in parallel
	s := &Stack{Dir: t.TempDir(), Prefix: "regshift.", coordinatorPort: servers.FreePort(t)}
	// Kafka takes the longest: start the others meanwhile. A helper that
	// fails marks the test failed and ends its goroutine; done is sent anyway.
	done := make(chan struct{}, 2)
	go func() { defer func() { done <- struct{}{} }(); s.ZooKeeper = StartZooKeeper(t, ZooKeeperOptions{}) }()
	go func() { defer func() { done <- struct{}{} }(); s.Consul = StartConsul(t, ConsulOptions{}) }()
	s.Kafka = StartKafka(t, KafkaOptions{})
	<-done
	<-done
	if s.ZooKeeper == nil || s.Consul == nil {
		t.FailNow() // the helper reported why
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := events.DefaultTopicsConfig()
	cfg.Prefix, cfg.CommandPartitions, cfg.EventPartitions = s.Prefix, 4, 2
	var err error
	if s.Topics, err = events.Bootstrap(ctx, s.Kafka.Brokers, cfg); err != nil {
		t.Fatalf("bootstrap topics: %v", err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s.privKey, s.pubKey, err = events.WriteKeyPair(s.Dir, keyID, priv); err != nil {
		t.Fatal(err)
	}
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if s.producer, err = events.NewProducer(events.DefaultProducerConfig(s.Kafka.Brokers), itest.TestLogger(t), m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.producer.Close() })

	zcfg := zookeeper.DefaultConfig(s.ZooKeeper.Addr)
	zcfg.BasePath = basePath
	if s.ZK, err = zookeeper.New(zcfg, itest.TestLogger(t)); err != nil {
		t.Fatal(err)
	}
	ccfg := consul.DefaultConfig()
	ccfg.Address = s.Consul.Addr
	if s.Cons, err = consul.New(ccfg, itest.TestLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ZK.Close(); _ = s.Cons.Close() })

	s.buildConsulPackage(t)
	return s
}

func (s *Stack) buildConsulPackage(t testing.TB) {
	t.Helper()
	dir := filepath.Join(s.Dir, "pkg-consul")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(dir, ifacepkg.ManifestName)
	manifest := fmt.Sprintf("apiVersion: %s\nkind: %s\ninterface: consul\ntype: consul\nversion: \"1.14\"\nsettings:\n  address: %q\n  options: {checkTTL: 5s}\n",
		ifacepkg.APIVersion, ifacepkg.Kind, s.Consul.Addr)
	if err := os.WriteFile(mf, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, digest, err := ifacepkg.Build(mf)
	if err != nil {
		t.Fatal(err)
	}
	s.consulPkg, s.ConsulDigest = filepath.Join(dir, "consul.tgz"), digest
	if err := os.WriteFile(s.consulPkg, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CoordinatorAPI is the address the Stack's coordinator listens on.
func (s *Stack) CoordinatorAPI() string { return "http://" + addr(s.coordinatorPort) }

// ConsulPackageURL is where agents fetch the Consul package: the
// coordinator serves it from its packagesDir.
func (s *Stack) ConsulPackageURL() string { return s.CoordinatorAPI() + consulPkgURL }

// CoordinatorYAML is a config for the Stack's coordinator: unsigned requests
// accepted, the enrolled nodes' keys trusted for events, fast ticks, the
// Consul package in packagesDir.
func (s *Stack) CoordinatorYAML(id string) string {
	return fmt.Sprintf("id: %s\nbrokers: [%s]\ntopicPrefix: %q\nsigningKey: %s\nacceptUnsigned: true\nnodeKeysDir: %s\nlisten: %s\npackagesDir: %s\ntick: 200ms\nregistryEvery: 500ms\ncommandPartitions: 4\n",
		id, strings.Join(s.Kafka.Brokers, ", "), s.Prefix, keysDir+"/"+keyID+events.PrivateKeyExt, nodeKeysDir, addr(s.coordinatorPort), packagesDir)
}

// Enrol makes a key pair for each node's agent and adds its public key to
// the nodes a coordinator trusts. A coordinator reads them when it starts:
// enrol the fleet first.
func (s *Stack) Enrol(t testing.TB, nodes ...string) {
	t.Helper()
	for _, d := range []string{s.hostDir("identity"), s.hostDir("nodes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range nodes {
		itest.KeyPair(t, s.hostDir("identity"), node)
		itest.Enrol(t, s.hostDir("identity"), node, s.hostDir("nodes"))
	}
}

func (s *Stack) hostDir(name string) string { return filepath.Join(s.Dir, name) }

// StartCoordinator starts a coordinator container with CoordinatorYAML, the
// signing key, the keys of the nodes enrolled so far and the Consul package.
func (s *Stack) StartCoordinator(t testing.TB, id string) *Coordinator {
	t.Helper()
	files := []File{
		{Path: keysDir + "/" + keyID + events.PrivateKeyExt, HostPath: s.privKey, Mode: 0o600},
		{Path: packagesDir + "/consul.tgz", HostPath: s.consulPkg},
		{Path: nodeKeysDir + "/" + events.RevokedFile, Content: []byte("# node key ids refused, one a line\n")},
	}
	pubs, _ := filepath.Glob(filepath.Join(s.hostDir("nodes"), "*"+events.PublicKeyExt))
	for _, p := range pubs {
		files = append(files, File{Path: nodeKeysDir + "/" + filepath.Base(p), HostPath: p})
	}
	return StartCoordinator(t, s.CoordinatorYAML(id), files...)
}

// AgentSpec says what a host does: role provider or consumer.
type AgentSpec struct {
	Node     string
	Role     string // provider | consumer | both
	Offers   []string
	Consumes []string
}

// AgentYAML is a config for spec on the Stack: ZooKeeper as its start
// interface, the Stack's topics and coordinator key, free ports.
func (s *Stack) AgentYAML(t testing.TB, spec AgentSpec) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s\nrole: %s\nstateDir: %s\n", spec.Node, spec.Role, agentState)
	fmt.Fprintf(&b, "startInterface: {name: zookeeper, type: zookeeper, address: %q, basePath: %s}\n", s.ZooKeeper.Addr, basePath)
	if len(spec.Offers) > 0 {
		b.WriteString("services:\n")
		for _, svc := range spec.Offers {
			fmt.Fprintf(&b, "  - {name: %s, port: %d}\n", svc, servers.FreePort(t))
		}
	}
	if len(spec.Consumes) > 0 {
		fmt.Fprintf(&b, "consumes: [%s]\n", strings.Join(spec.Consumes, ", "))
	}
	fmt.Fprintf(&b, "kafka: {brokers: [%s], topicPrefix: %q}\n", strings.Join(s.Kafka.Brokers, ", "), s.Prefix)
	fmt.Fprintf(&b, "trust: {keysDir: %s}\nidentity: {signingKey: %s/%s%s}\napi: {listen: %q}\nhealthInterval: 250ms\n",
		keysDir, identityDir, spec.Node, events.PrivateKeyExt, addr(servers.FreePort(t)))
	return b.String()
}

// StartAgent starts an agent container for spec, trusting the Stack's key
// and signing with its node's key (Enrol makes it; enrolled here if it was
// not, but then a coordinator started before does not trust it).
func (s *Stack) StartAgent(t testing.TB, spec AgentSpec) *Agent {
	t.Helper()
	key := filepath.Join(s.hostDir("identity"), spec.Node+events.PrivateKeyExt)
	if _, err := os.Stat(key); err != nil {
		s.Enrol(t, spec.Node)
	}
	return StartAgent(t, s.AgentYAML(t, spec), File{Path: keysDir + "/" + keyID + events.PublicKeyExt, HostPath: s.pubKey},
		File{Path: identityDir + "/" + spec.Node + events.PrivateKeyExt, HostPath: key, Mode: 0o600})
}

// Plan is a ZooKeeper → Consul plan for nodes (node → role) with the Consul
// package served by the coordinator: canary 1, then 100 %, switch back on a
// failed gate, automatic finalize.
func (s *Stack) Plan(nodes []AgentSpec) schema.Plan {
	p := schema.Plan{
		From: schema.Interface{Name: "zookeeper", Kind: "zookeeper", Address: s.ZooKeeper.Addr + basePath,
			Package: schema.Package{URL: "file:///unused/zookeeper.tgz", Digest: "sha256:" + fmt.Sprintf("%064d", 0)}},
		To: schema.Interface{Name: "consul", Kind: "consul", Address: s.Consul.Addr,
			Package: schema.Package{URL: s.ConsulPackageURL(), Digest: s.ConsulDigest}},
		Waves: schema.Waves{Canary: 1, Percentages: []int{100}, MaxInFlight: 3},
		Gates: schema.Gates{AckTimeoutSeconds: 30, SoakSeconds: 2, MinHealthyRatio: 1, MinParity: 0.99, FailureBudget: 0,
			OnFailure: coordinator.OnFailureSwitchBack},
		Finalize: coordinator.FinalizeAutomatic,
	}
	for _, n := range nodes {
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: n.Node, Roles: []string{n.Role}})
	}
	return p
}

// Request publishes an unsigned operator request (the coordinator accepts
// unsigned ones), as another system would.
func (s *Stack) Request(t testing.TB, req schema.Request) {
	t.Helper()
	enc := &events.Encoder{Topics: s.Topics, Source: "regshift/itest-containers"}
	rec, err := enc.Encode(req)
	if err != nil {
		t.Fatalf("encode request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.producer.Publish(ctx, rec); err != nil {
		t.Fatalf("publish request: %v", err)
	}
}

// RequestHeader is a header for rollout, requested now.
func RequestHeader(requestID, rollout string) schema.RequestHeader {
	return schema.RequestHeader{RequestID: requestID, RolloutID: rollout, RequestedBy: "itest-containers", RequestedAt: time.Now().UTC()}
}

// Rollout reads GET /v1/rollouts/{id} from the coordinator's API.
func (c *Coordinator) Rollout(ctx context.Context, id string) (coordinator.Rollout, error) {
	var r coordinator.Rollout
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.API+"/v1/rollouts/"+id, nil)
	if err != nil {
		return r, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET rollout %s: %s", id, resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// AwaitRollout polls the rollout until ok accepts it, for up to within.
func (c *Coordinator) AwaitRollout(t testing.TB, id string, within time.Duration, what string, ok func(coordinator.Rollout) error) coordinator.Rollout {
	t.Helper()
	var r coordinator.Rollout
	itest.Eventually(t, within, what, func() error {
		var err error
		if r, err = c.Rollout(context.Background(), id); err != nil {
			return err
		}
		return ok(r)
	})
	return r
}

// AwaitPhase waits until the rollout reaches phase.
func (c *Coordinator) AwaitPhase(t testing.TB, id string, phase coordinator.Phase, within time.Duration) coordinator.Rollout {
	t.Helper()
	return c.AwaitRollout(t, id, within, "rollout "+string(phase), func(r coordinator.Rollout) error {
		if r.Phase != phase {
			last := ""
			if n := len(r.Decisions); n > 0 {
				d := r.Decisions[n-1]
				last = string(d.Decision) + " " + string(d.Check) + " " + d.Detail
			}
			return fmt.Errorf("phase %s wave %d (last decision: %s)", r.Phase, r.Wave+1, last)
		}
		return nil
	})
}

// Instances lists the ids of the healthy instances of service in reg, sorted.
func Instances(ctx context.Context, reg registries.Registry, service string) ([]string, error) {
	ins, err := reg.Resolve(ctx, service)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ins))
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids, nil
}

// ServiceID is the id an agent registers service under by default.
func ServiceID(service, node string) string { return service + "-" + node }

// ConsulPackagePath is the host path of the Consul package the Stack built.
func (s *Stack) ConsulPackagePath() string { return s.consulPkg }
