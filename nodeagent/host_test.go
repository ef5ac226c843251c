package nodeagent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// fakeFleet is one in-memory registry per address, as the real fleet has
// one ZooKeeper ensemble and one Consul cluster.
type fakeFleet struct {
	mu     sync.Mutex
	stores map[string]*memory.Store
	opened []string
}

func (f *fakeFleet) store(addr string) *memory.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stores == nil {
		f.stores = map[string]*memory.Store{}
	}
	if f.stores[addr] == nil {
		f.stores[addr] = memory.NewStore()
	}
	return f.stores[addr]
}

func (f *fakeFleet) opener(_ context.Context, spec InterfaceSpec) (registries.Registry, error) {
	f.mu.Lock()
	f.opened = append(f.opened, spec.Name)
	f.mu.Unlock()
	return memory.New(f.store(spec.Settings.Address), quiet()), nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t *testing.T, role Role) Config {
	t.Helper()
	c := DefaultConfig()
	c.Node, c.Role, c.StateDir = "node-1", role, t.TempDir()
	c.Start.Address = "zk:2181"
	c.Trust.KeysDir, c.Identity.SigningKey = "/k", "/k/node-1.key"
	c.Fetch.FileRoot = os.TempDir() // consulPackage writes under t.TempDir()
	if role.Registers() {
		c.Services = []Service{{Name: "orders", Port: 8080}}
	}
	if role.Resolves() {
		c.Consumes = []string{"payments"}
	}
	c.fill()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// activated brings h from cfg's start interface to "consul" (at
// consul:8500) installed and activated, and returns the state.
func activated(t *testing.T, ctx context.Context, h *Host, cfg Config) State {
	t.Helper()
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	for _, e := range Reconcile(s) {
		if err := h.Apply(ctx, s, e); err != nil {
			t.Fatal(err)
		}
	}
	url, digest := consulPackage(t, "consul:8500")
	for _, c := range []Command{
		{ID: "1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: url, Digest: digest},
		{ID: "2", Kind: schema.CommandActivate, Interface: "consul"},
	} {
		var ack Ack
		if s, ack = h.Execute(ctx, s, Decide(s, c)); ack.Status != schema.AckDone {
			t.Fatal(ack)
		}
	}
	return s
}

// consulPackage builds a package for the "consul" interface at addr.
func consulPackage(t *testing.T, addr string) (url, digest string) {
	t.Helper()
	dir := t.TempDir()
	manifest := "apiVersion: regshift.io/v1\nkind: InterfacePackage\ninterface: consul\ntype: consul\nversion: \"1.14\"\nsettings: {address: \"" + addr + "\"}\n"
	mf := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(mf, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, digest, err := ifacepkg.Build(mf)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "consul.tgz")
	if err := os.WriteFile(p, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + p, digest
}

func registered(t *testing.T, s *memory.Store, service, id string) bool {
	t.Helper()
	c := memory.New(s, quiet())
	defer c.Close()
	got, err := c.Resolve(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.ID == id {
			return true
		}
	}
	return false
}

func waitVia(t *testing.T, hub *Hub, service, via string, n int) agentapi.Resolution {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, ok := hub.Get(service)
		if ok && r.Via == via && len(r.Endpoints) == n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: resolution %+v, want %d endpoints via %s", service, r, n, via)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		hub.Wait(ctx, service, r.Index)
		cancel()
	}
}

// TestHostLifecycle drives a host that provides orders and consumes payments
// through install, activate, switch back, activate and uninstall of the old
// interface, checking both registries and what its apps resolve.
func TestHostLifecycle(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleBoth)
	zk, consul := fleet.store("zk:2181"), fleet.store("consul:8500")
	// Another provider of payments: registered in ZooKeeper, and mirrored
	// into Consul by the bridge.
	for _, st := range []*memory.Store{zk, consul} {
		c := memory.New(st, quiet())
		if err := c.Register(context.Background(), registries.Instance{Service: "payments", ID: "pay-1", Address: "127.0.0.1", Port: 9000}); err != nil {
			t.Fatal(err)
		}
	}
	hub := NewHub()
	h := NewHost(cfg, fleet.opener, hub, nil, quiet())
	ctx := context.Background()
	s, err := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Reconcile(s) {
		if err := h.Apply(ctx, s, e); err != nil {
			t.Fatal(err)
		}
	}
	waitVia(t, hub, "payments", "zookeeper", 1)
	if !registered(t, zk, "orders", "orders-node-1") || registered(t, consul, "orders", "orders-node-1") {
		t.Fatal("start: want orders in ZooKeeper only")
	}

	url, digest := consulPackage(t, "consul:8500")
	step := func(c Command) {
		t.Helper()
		var ack Ack
		s, ack = h.Execute(ctx, s, Decide(s, c))
		if ack.Status != schema.AckDone {
			t.Fatalf("%s %s: %+v", c.Kind, c.Interface, ack)
		}
	}
	step(Command{ID: "1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: url, Digest: digest})
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "interfaces", "consul", strings.TrimPrefix(digest, "sha256:"), "manifest.yaml")); err != nil {
		t.Fatalf("package not unpacked: %v", err)
	}
	step(Command{ID: "2", Kind: schema.CommandActivate, Interface: "consul"})
	if !registered(t, zk, "orders", "orders-node-1") || !registered(t, consul, "orders", "orders-node-1") {
		t.Fatal("activate: want orders in both registries")
	}
	waitVia(t, hub, "payments", "consul", 1)

	// Consul loses the mirrored provider: parity fails, apps fall back.
	mc := memory.New(consul, quiet())
	if err := mc.Deregister(ctx, "payments", "pay-1"); err != nil {
		t.Fatal(err)
	}
	if r := waitVia(t, hub, "payments", "zookeeper", 1); !r.FellBack || r.ParityNote == "" {
		t.Fatalf("fallback answer %+v", r)
	}
	if err := mc.Register(ctx, registries.Instance{Service: "payments", ID: "pay-1", Address: "127.0.0.1", Port: 9000}); err != nil {
		t.Fatal(err)
	}
	waitVia(t, hub, "payments", "consul", 1)

	step(Command{ID: "3", Kind: schema.CommandSwitchBack, Interface: "consul"})
	if !registered(t, zk, "orders", "orders-node-1") || registered(t, consul, "orders", "orders-node-1") {
		t.Fatal("switch back: want orders in ZooKeeper only")
	}
	waitVia(t, hub, "payments", "zookeeper", 1)

	step(Command{ID: "4", Kind: schema.CommandActivate, Interface: "consul"})
	step(Command{ID: "5", Kind: schema.CommandUninstall, Interface: "zookeeper"})
	if registered(t, zk, "orders", "orders-node-1") || !registered(t, consul, "orders", "orders-node-1") {
		t.Fatal("uninstall old: want orders in Consul only")
	}
	if _, ok := h.Client("zookeeper"); ok {
		t.Fatal("zookeeper client still open after uninstall")
	}
	waitVia(t, hub, "payments", "consul", 1)

	if err := h.Shutdown(ctx, s, true); err != nil {
		t.Fatal(err)
	}
	if registered(t, consul, "orders", "orders-node-1") {
		t.Fatal("shutdown with deregister left orders in Consul")
	}
}

// TestHostFailedInstallKeepsOldState: a wrong digest fails the install with
// its reason and leaves the host as it was, with nothing unpacked.
func TestHostFailedInstallKeepsOldState(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleProvider)
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	url, _ := consulPackage(t, "consul:8500")
	bad := "sha256:" + strings.Repeat("0", 64)
	next, ack := h.Execute(context.Background(), s, Decide(s, Command{ID: "1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: url, Digest: bad}))
	if ack.Status != schema.AckFailed || !strings.HasPrefix(ack.Reason, ReasonDigestMismatch+": ") {
		t.Fatalf("ack %+v", ack)
	}
	if next.Phase("consul") != schema.StateAbsent || len(next.Applied) != 0 {
		t.Fatalf("state moved: %+v", next)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "interfaces", "consul")); !os.IsNotExist(err) {
		t.Fatalf("something was written for the refused package: %v", err)
	}
	if !registered(t, fleet.store("zk:2181"), "orders", "orders-node-1") {
		t.Fatal("reconcile after the failure did not keep orders registered in ZooKeeper")
	}
}

// TestHostFailedInstallLongErrorFitsTheAck: a fetch error naming a long
// package URL (the schema allows 2,048 characters) still makes an ack the
// schema takes, with its stable reason first.
func TestHostFailedInstallLongErrorFitsTheAck(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleProvider)
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	url := "file://" + filepath.Join(os.TempDir(), "nonexistent", strings.Repeat("a", 2000)+".tgz")
	_, ack := h.Execute(context.Background(), s, Decide(s, Command{ID: "1", Kind: schema.CommandInstall, Interface: "consul",
		PackageURL: url, Digest: "sha256:" + strings.Repeat("0", 64)}))
	if ack.Status != schema.AckFailed || !strings.HasPrefix(ack.Reason, ReasonPackageFetch+": ") || !strings.HasSuffix(ack.Reason, "…") {
		t.Fatalf("ack %+v", ack)
	}
	wire := &schema.Ack{NodeID: cfg.Node, CommandID: "1", RolloutID: "ro-1", Epoch: 1, Outcome: ack.Status, Reason: ack.Reason, At: time.Now()}
	if _, err := schema.Encode(wire); err != nil {
		t.Fatalf("the ack does not encode: %v", err)
	}
}

// TestHostFailedActivateReassertsOld: Consul down during activate fails the
// command and leaves resolves and registrations on ZooKeeper.
func TestHostFailedActivateReassertsOld(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleBoth)
	hub := NewHub()
	h := NewHost(cfg, fleet.opener, hub, nil, quiet())
	ctx := context.Background()
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	for _, e := range Reconcile(s) {
		if err := h.Apply(ctx, s, e); err != nil {
			t.Fatal(err)
		}
	}
	url, digest := consulPackage(t, "consul:8500")
	s, _ = h.Execute(ctx, s, Decide(s, Command{ID: "1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: url, Digest: digest}))
	fleet.store("consul:8500").SetDown(true)
	next, ack := h.Execute(ctx, s, Decide(s, Command{ID: "2", Kind: schema.CommandActivate, Interface: "consul"}))
	if ack.Status != schema.AckFailed || !strings.HasPrefix(ack.Reason, ReasonRegistryDown) {
		t.Fatalf("ack %+v", ack)
	}
	if next.Primary != "zookeeper" || next.Phase("consul") != schema.StateInstalled {
		t.Fatalf("state moved: %+v", next)
	}
	if !registered(t, fleet.store("zk:2181"), "orders", "orders-node-1") {
		t.Fatal("orders no longer in ZooKeeper")
	}
}

// TestHostSwitchBackFromDeadRegistry: the new registry dies after activate;
// switching back must still succeed (routing and registrations back on
// ZooKeeper), since that is when it is needed most.
func TestHostSwitchBackFromDeadRegistry(t *testing.T) {
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleBoth)
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	ctx := context.Background()
	s := activated(t, ctx, h, cfg)
	fleet.store("consul:8500").SetDown(true)
	s, ack := h.Execute(ctx, s, Decide(s, Command{ID: "3", Kind: schema.CommandSwitchBack, Interface: "consul"}))
	if ack.Status != schema.AckDone || s.Primary != "zookeeper" || s.Phase("consul") != schema.StateStandby {
		t.Fatalf("switch back from a dead Consul: %+v, primary %s", ack, s.Primary)
	}
	if !registered(t, fleet.store("zk:2181"), "orders", "orders-node-1") {
		t.Fatal("orders not registered in ZooKeeper after switching back")
	}
	if h.errorsOf("consul") == 0 {
		t.Fatal("the failed deregistration was not counted")
	}
}
