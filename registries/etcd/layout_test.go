package etcd_test

import (
	"context"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/etcd"
	"github.com/regshift/regshift/registries/registrytest"
)

// uniquePrefix returns a prefix no other test uses, and deletes what is
// left under it at the end of the test.
func uniquePrefix(t *testing.T, raw *clientv3.Client) string {
	t.Helper()
	p := "/" + registrytest.Unique("regshift-test")
	t.Cleanup(func() { _, _ = raw.Delete(context.Background(), p+"/", clientv3.WithPrefix()) })
	return p
}

// TestEndpointsLayout: what the adapter writes is etcd's naming/endpoints
// format, which endpoints.Manager (what gRPC's etcd resolver reads with)
// lists; what endpoints.Manager writes the adapter resolves; keys and
// values that are not instances are skipped.
func TestEndpointsLayout(t *testing.T) {
	eps := servers.RequireEtcd(t)
	raw := rawClient(t, eps)
	ctx := registrytest.Ctx(t)
	cfg := etcd.DefaultConfig(eps...)
	cfg.Prefix = uniquePrefix(t, raw) + "/services"
	c := newClient(t, cfg)
	svc := registrytest.Unique("orders")
	target := cfg.Prefix + "/" + svc

	ours := registrytest.Inst(svc, "a", 8001)
	if err := c.Register(ctx, ours); err != nil {
		t.Fatal(err)
	}
	got, err := raw.Get(ctx, target+"/a")
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("get %s/a: %v, %v", target, got, err)
	}
	const want = `{"Op":0,"Addr":"127.0.0.1:8001","Metadata":{"tags":["v1","primary"],"metadata":{"owner":"team-a","zone":"a"}}}`
	if v := string(got.Kvs[0].Value); v != want {
		t.Fatalf("value\n got %s\nwant %s", v, want)
	}
	if got.Kvs[0].Lease == 0 {
		t.Fatal("the instance's key has no lease")
	}

	em, err := endpoints.NewManager(raw, target)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := em.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := listed[target+"/a"]; !ok || ep.Addr != "127.0.0.1:8001" {
		t.Fatalf("endpoints.Manager lists %v, want %s/a at 127.0.0.1:8001", listed, target)
	}

	for key, ep := range map[string]endpoints.Endpoint{
		"grpc-1":  {Addr: "10.0.0.7:9000"},
		"grpc-2":  {Addr: "[fd00::8]:9000", Metadata: "weight=3"}, // Metadata of another writer: no tags
		"no-port": {Addr: "10.0.0.9"},
	} {
		if err := em.AddEndpoint(ctx, target+"/"+key, ep); err != nil {
			t.Fatal(err)
		}
	}
	for key, val := range map[string]string{"junk": "not json", "a/nested": `{"Op":0,"Addr":"10.0.0.1:1"}`} {
		if _, err := raw.Put(ctx, target+"/"+key, val); err != nil {
			t.Fatal(err)
		}
	}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{
		ours,
		{Service: svc, ID: "grpc-1", Address: "10.0.0.7", Port: 9000},
		{Service: svc, ID: "grpc-2", Address: "fd00::8", Port: 9000},
	})
}

// TestPrefixesAreSeparateRegistries: one cluster under two prefixes — a
// layout upgrade in place, /services to /services-v2 — is two registries:
// the same instance id in both, and each client sees only its own.
func TestPrefixesAreSeparateRegistries(t *testing.T) {
	eps := servers.RequireEtcd(t)
	raw := rawClient(t, eps)
	ctx := registrytest.Ctx(t)
	base := uniquePrefix(t, raw)
	open := func(prefix string) *etcd.Client {
		cfg := etcd.DefaultConfig(eps...)
		cfg.Prefix = prefix
		return newClient(t, cfg)
	}
	v1, v2 := open(base+"/services"), open(base+"/services-v2")
	svc, only2 := registrytest.Unique("orders"), registrytest.Unique("new")
	old, moved := registrytest.Inst(svc, "a", 8001), registrytest.Inst(svc, "a", 9001)
	register := func(c *etcd.Client, in registries.Instance) {
		t.Helper()
		if err := c.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	register(v1, old)
	register(v2, moved)
	register(v2, registrytest.Inst(only2, "x", 9002))
	registrytest.ResolvesTo(t, v1, svc, []registries.Instance{old})
	registrytest.ResolvesTo(t, v2, svc, []registries.Instance{moved})
	registrytest.ResolvesTo(t, v1, only2, nil)
	for c, want := range map[*etcd.Client][]string{v1: {svc}, v2: {svc, only2}} {
		names, err := c.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("services %v, want %v", names, want)
		}
	}
	if err := v1.Deregister(ctx, svc, "a"); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, v1, svc, nil)
	registrytest.ResolvesTo(t, v2, svc, []registries.Instance{moved})
}
