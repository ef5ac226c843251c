package consul_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

// mirrorNode returns a catalog node of the test's own, removed with all its
// entries at the end of the test.
func mirrorNode(t testing.TB, addr string) string {
	t.Helper()
	node := registrytest.Unique("regshift-mirrors")
	raw := rawClient(t, addr)
	t.Cleanup(func() {
		if _, err := raw.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, nil); err != nil {
			t.Errorf("remove node %s: %v", node, err)
		}
	})
	return node
}

// rawClient is an SDK client that leaves no idle connections behind.
func rawClient(t testing.TB, addr string) *api.Client {
	t.Helper()
	cfg := api.DefaultNonPooledConfig() // no keep-alive: nothing idle outlives the test
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCatalog(t testing.TB, addr, node string) *consul.Catalog {
	t.Helper()
	cfg := consul.DefaultCatalogConfig()
	cfg.Address, cfg.Node = addr, node
	c, err := consul.NewCatalog(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new catalog: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entries returns the raw catalog entries of service across all nodes, by
// service ID.
func entries(t testing.TB, raw *api.Client, service string) map[string][]*api.CatalogService {
	t.Helper()
	list, _, err := raw.Catalog().Service(service, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*api.CatalogService{}
	for _, e := range list {
		out[e.ServiceID] = append(out[e.ServiceID], e)
	}
	return out
}

// TestCatalogConformance runs the registry suite on Catalog, with the
// clients of one test sharing a node. Two parts differ from the agent
// client by design: RestoredAfterDisruption does not run, since a Catalog
// restores nothing itself (its caller's reconcile does: the bridge test
// TestBridgeCatalogAtScale covers that path), and WatchSeesChanges ends with
// a deregistration, since entries outlive their writer's Close (Durable).
func TestCatalogConformance(t *testing.T) {
	addr := servers.RequireConsul(t)
	node := registrytest.PerTest(func(t *testing.T) string { return mirrorNode(t, addr) })
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry { return newCatalog(t, addr, node(t)) },
		Down: func(t *testing.T) registries.Registry {
			return newCatalog(t, servers.ClosedAddr(t), "regshift-mirrors")
		},
		Durable: true,
	})
}

// TestCatalogEntry checks what Register writes: one entry on the node of
// its own, marked as regshift's, without checks yet passing; an update or
// a repeat keeps it one entry, and an unchanged repeat changes nothing.
func TestCatalogEntry(t *testing.T) {
	addr := servers.RequireConsul(t)
	raw := rawClient(t, addr)
	node := mirrorNode(t, addr)
	c := newCatalog(t, addr, node)
	ctx := registrytest.Ctx(t)
	svc := registrytest.Unique("catalog")
	in := registrytest.Inst(svc, "a", 8001)
	if err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{in}) // passing only

	health, _, err := raw.Health().Service(svc, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(health) != 1 {
		t.Fatalf("%d health entries, want 1", len(health))
	}
	e := health[0]
	if e.Node.Node != node || e.Node.Meta[consul.NodeMetaSource] != consul.NodeMetaSourceValue {
		t.Errorf("entry on node %s with meta %v, want node %s marked %s=%s",
			e.Node.Node, e.Node.Meta, node, consul.NodeMetaSource, consul.NodeMetaSourceValue)
	}
	if e.Service.ID != svc+":a" || len(e.Checks) != 0 || e.Checks.AggregatedStatus() != api.HealthPassing {
		t.Errorf("service %s with %d checks (%s), want ID %s:a, no checks, passing",
			e.Service.ID, len(e.Checks), e.Checks.AggregatedStatus(), svc)
	}

	moved := in.Clone()
	moved.Port = 8002
	for range 2 {
		if err := c.Register(ctx, moved); err != nil {
			t.Fatal(err)
		}
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{moved})
	byID := entries(t, raw, svc)
	if len(byID) != 1 || len(byID[svc+":a"]) != 1 {
		t.Fatalf("catalog holds %v, want one entry %s:a", byID, svc)
	}
	before := byID[svc+":a"][0].ModifyIndex
	if err := c.Register(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if after := entries(t, raw, svc)[svc+":a"][0].ModifyIndex; after != before {
		t.Errorf("an unchanged entry written again moved from index %d to %d", before, after)
	}
}

// TestCatalogDeregisterOwnNodeOnly registers the same service ID through
// the agent (on the agent's node) and through a Catalog: Deregister removes
// the Catalog's entry and leaves the agent's; once its node holds none,
// Deregister says ErrNotFound.
func TestCatalogDeregisterOwnNodeOnly(t *testing.T) {
	addr := servers.RequireConsul(t)
	raw := rawClient(t, addr)
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	agent := newClient(t, cfg) // its Close removes its registration
	c := newCatalog(t, addr, mirrorNode(t, addr))
	ctx := registrytest.Ctx(t)
	svc := registrytest.Unique("catalog-dereg")
	in := registrytest.Inst(svc, "a", 8001)
	if err := agent.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	registrytest.Eventually(t, registrytest.Patience, "both entries in the catalog", func() error {
		if n := len(entries(t, raw, svc)[svc+":a"]); n != 2 {
			return errors.New("not yet")
		}
		return nil
	})

	if err := c.Deregister(ctx, svc, "a"); err != nil {
		t.Fatal(err)
	}
	left := entries(t, raw, svc)[svc+":a"]
	self, err := raw.Agent().NodeName()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Node != self {
		t.Fatalf("after Deregister the catalog holds %d entries of %s:a (%v), want the agent's on %s", len(left), svc, left, self)
	}
	if err := c.Deregister(ctx, svc, "a"); !errors.Is(err, registries.ErrNotFound) || registries.Retriable(err) {
		t.Fatalf("second deregister: %v, want ErrNotFound (the agent's entry is not the Catalog's)", err)
	}
	if err := c.Deregister(ctx, registrytest.Unique("nobody"), "x"); !errors.Is(err, registries.ErrNotFound) {
		t.Fatalf("deregister of an unknown service: %v, want ErrNotFound", err)
	}
}

// TestCatalogNewWriterAdopts closes a Catalog (a leader that stepped down):
// its entries stay passing; a new Catalog on the same node sees them, writes
// them again without duplicates and may delete them. The closed one
// refuses everything.
func TestCatalogNewWriterAdopts(t *testing.T) {
	addr := servers.RequireConsul(t)
	raw := rawClient(t, addr)
	node := mirrorNode(t, addr)
	ctx := registrytest.Ctx(t)
	svc := registrytest.Unique("catalog-adopt")
	want := []registries.Instance{registrytest.Inst(svc, "a", 8001), registrytest.Inst(svc, "b", 8002), registrytest.Inst(svc, "c", 8003)}

	old := newCatalog(t, addr, node)
	for _, in := range want {
		if err := old.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"register":   func() error { return old.Register(ctx, want[0]) },
		"deregister": func() error { return old.Deregister(ctx, svc, "a") },
		"resolve":    func() error { _, err := old.Resolve(ctx, svc); return err },
		"watch":      func() error { _, err := old.Watch(ctx, svc); return err },
		"services":   func() error { _, err := old.Services(ctx); return err },
		"ping":       func() error { return old.Ping(ctx) },
	} {
		if err := op(); !errors.Is(err, registries.ErrClosed) {
			t.Errorf("%s after close: %v, want ErrClosed", name, err)
		}
	}

	leader := newCatalog(t, addr, node)
	registrytest.ResolvesTo(t, leader, svc, want)
	want[1].Port = 9002
	for _, in := range want {
		if err := leader.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	registrytest.ResolvesTo(t, leader, svc, want)
	for id, es := range entries(t, raw, svc) {
		if len(es) != 1 {
			t.Errorf("%s has %d entries, want 1", id, len(es))
		}
	}
	if err := leader.Deregister(ctx, svc, "a"); err != nil {
		t.Fatalf("the new writer deregisters its predecessor's entry: %v", err)
	}
	registrytest.ResolvesTo(t, leader, svc, want[1:])
}

func TestCatalogConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*consul.CatalogConfig)
		ok   bool
	}{
		{"default", func(*consul.CatalogConfig) {}, true},
		{"host name node address", func(c *consul.CatalogConfig) { c.NodeAddress = "mirrors.internal" }, true},
		{"empty node", func(c *consul.CatalogConfig) { c.Node = "" }, false},
		{"node with a dot", func(c *consul.CatalogConfig) { c.Node = "regshift.mirrors" }, false},
		{"node ending in '-'", func(c *consul.CatalogConfig) { c.Node = "mirrors-" }, false},
		{"node of 64 characters", func(c *consul.CatalogConfig) { c.Node = strings.Repeat("n", 64) }, false},
		{"empty node address", func(c *consul.CatalogConfig) { c.NodeAddress = "" }, false},
		{"agent settings checked", func(c *consul.CatalogConfig) { c.Address = "http://127.0.0.1:8500" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := consul.DefaultCatalogConfig()
			tc.mod(&cfg)
			c, err := consul.NewCatalog(cfg, nil)
			if c != nil {
				_ = c.Close()
			}
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, consul.ErrConfig)) {
				t.Fatalf("NewCatalog: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestCatalogRefused answers the write transactions as Consul does when the
// token may not write the entry (the write fails its pre-check, the guard
// never runs): plain errors with Consul's reason, neither ErrNotFound nor
// retriable.
func TestCatalogRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/txn" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"Results":null,"Errors":[{"OpIndex":1,"What":"Permission denied: token lacks service:write"}]}`))
	}))
	defer srv.Close()
	c := newCatalog(t, strings.TrimPrefix(srv.URL, "http://"), "regshift-mirrors")
	for name, err := range map[string]error{
		"register":   c.Register(context.Background(), registrytest.Inst("web", "1", 80)),
		"deregister": c.Deregister(context.Background(), "web", "1"),
	} {
		if err == nil || errors.Is(err, registries.ErrNotFound) || registries.Retriable(err) || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("%s refused by the server: %v, want a plain error with Consul's reason", name, err)
		}
	}
}

// TestCatalogRecreatesItsNode removes the Catalog's node behind its back
// (an operator cleaning up): the next Register writes the node again, with
// its mark.
func TestCatalogRecreatesItsNode(t *testing.T) {
	addr := servers.RequireConsul(t)
	raw := rawClient(t, addr)
	node := mirrorNode(t, addr)
	c := newCatalog(t, addr, node)
	svc := registrytest.Unique("catalog-node")
	a, b := registrytest.Inst(svc, "a", 8001), registrytest.Inst(svc, "b", 8002)
	if err := c.Register(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(context.Background(), b); err != nil {
		t.Fatalf("register after the node was removed: %v", err)
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{b})
	n, _, err := raw.Catalog().Node(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n == nil || n.Node.Address != "127.0.0.1" || n.Node.Meta[consul.NodeMetaSource] != consul.NodeMetaSourceValue {
		t.Fatalf("node written again as %+v, want address 127.0.0.1 and the regshift mark", n)
	}
}
