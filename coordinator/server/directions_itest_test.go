package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/schema"
)

// registryEnd is one side of a migration: the interface a fleet leaves or
// moves to, its kind, and where it is.
type registryEnd struct {
	name, kind string
	address    string // as a plan's address names it
	settings   open.Settings
}

// start is the agent config's start interface on this end.
func (e registryEnd) start() nodeagent.StartInterface {
	return nodeagent.StartInterface{Name: e.name, Type: e.kind, Address: e.settings.Address, BasePath: e.settings.BasePath}
}

// manifest is an interface package's manifest for this end.
func (e registryEnd) manifest() string {
	m := fmt.Sprintf("apiVersion: %s\nkind: %s\ninterface: %s\ntype: %s\nversion: \"1\"\nsettings:\n  address: %q\n",
		ifacepkg.APIVersion, ifacepkg.Kind, e.name, e.kind, e.settings.Address)
	if e.settings.BasePath != "" {
		m += fmt.Sprintf("  basePath: %q\n", e.settings.BasePath)
	}
	if e.kind == string(registries.KindConsul) {
		m += "  options: {checkTTL: 5s}\n"
	}
	return m
}

// open is a client of this end's registry for the test's own reads.
func (e registryEnd) open(t *testing.T, env *itest.Env) registries.Registry {
	t.Helper()
	r, err := open.Open(registries.Kind(e.kind), e.settings, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// directionEnds are the registries a direction test can name, on the real
// servers: ZooKeeper at two base paths of one ensemble (a layout upgrade
// in place), etcd at two prefixes of one server likewise, Eureka, and two
// Consuls (two datacenters: the shared agent and a private one).
func directionEnds(t *testing.T, env *itest.Env, names ...string) map[string]registryEnd {
	t.Helper()
	all := map[string]func() registryEnd{
		"zookeeper": func() registryEnd {
			return registryEnd{"zookeeper", "zookeeper", env.ZooKeeper + env.BasePath, open.Settings{Address: env.ZooKeeper, BasePath: env.BasePath}}
		},
		"zookeeper-v2": func() registryEnd {
			base := env.BasePath + "-v2"
			return registryEnd{"zookeeper-v2", "zookeeper", env.ZooKeeper + base, open.Settings{Address: env.ZooKeeper, BasePath: base}}
		},
		"consul": func() registryEnd {
			return registryEnd{"consul", "consul", env.Consul, open.Settings{Address: env.Consul}}
		},
		"etcd": func() registryEnd {
			eps, prefix := servers.RequireEtcd(t)[0], env.BasePath
			return registryEnd{"etcd", "etcd", eps + prefix, open.Settings{Address: eps, BasePath: prefix}}
		},
		"etcd-v2": func() registryEnd {
			eps, prefix := servers.RequireEtcd(t)[0], env.BasePath+"-v2"
			return registryEnd{"etcd-v2", "etcd", eps + prefix, open.Settings{Address: eps, BasePath: prefix}}
		},
		"eureka": func() registryEnd {
			addr := servers.RequireEureka(t)
			return registryEnd{"eureka", "eureka", addr, open.Settings{Address: addr}}
		},
		"consul-b": func() registryEnd {
			addr := servers.StartPrivate(t, servers.Consul).Addr()
			return registryEnd{"consul-b", "consul", addr, open.Settings{Address: addr}}
		},
	}
	out := map[string]registryEnd{}
	for _, n := range names {
		out[n] = all[n]()
	}
	return out
}

// TestMigrationDirections runs a rollout for each direction on the real
// servers — each ordered pair of {zookeeper, consul, etcd, eureka}, and the
// same kind at another address or layout — with two providers and two consumers whose agents
// start on the old interface. Every 100 ms through the rollout each
// consumer resolves the service through its agent and must find both
// providers; at the end the providers are in the new registry only.
func TestMigrationDirections(t *testing.T) {
	kinds := []string{"zookeeper", "consul", "etcd", "eureka"}
	var dirs [][2]string
	for _, from := range kinds {
		for _, to := range kinds {
			if from != to {
				dirs = append(dirs, [2]string{from, to})
			}
		}
	}
	// The same kind at another layout or address.
	dirs = append(dirs, [2]string{"zookeeper", "zookeeper-v2"}, [2]string{"etcd", "etcd-v2"}, [2]string{"consul", "consul-b"})
	for _, dir := range dirs {
		t.Run(dir[0]+"-to-"+dir[1], func(t *testing.T) {
			env := itest.New(t)
			ends := directionEnds(t, env, dir[0], dir[1])
			migrate(t, env, ends[dir[0]], ends[dir[1]])
		})
	}
}

// migrate moves a fleet of two providers and two consumers from one end to
// the other and checks what the consumers resolve throughout.
func migrate(t *testing.T, env *itest.Env, from, to registryEnd) {
	t.Helper()
	svc := env.Service("orders")
	fromURL, fromDigest := env.Package(t, from.name, from.manifest())
	toURL, toDigest := env.Package(t, to.name, to.manifest())
	env.Digest = toDigest
	start := func(spec itest.AgentSpec) *itest.Agent {
		cfg := env.AgentConfig(t, spec)
		cfg.Start = from.start()
		return env.StartAgentWith(t, cfg)
	}
	providers := []*itest.Agent{start(itest.Provider("p1", svc)), start(itest.Provider("p2", svc))}
	consumers := []*itest.Agent{start(itest.Consumer("c1", svc)), start(itest.Consumer("c2", svc))}
	old, neu := from.open(t, env), to.open(t, env)
	awaitSet(t, old, svc, providers, true)

	for _, c := range consumers {
		itest.Eventually(t, 30*time.Second, c.Node+" resolves both providers", func() error {
			res, err := c.Client(t).Resolve(context.Background(), svc)
			if err != nil || len(res.Endpoints) != len(providers) {
				return fmt.Errorf("%+v %v", res, err)
			}
			return nil
		})
	}
	// From here on the consumers resolve all along; every answer must hold
	// both providers.
	var resolves, wrong atomic.Int64
	var lastWrong atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range consumers {
		client := c.Client(t)
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := client.Resolve(ctx, svc)
				if ctx.Err() != nil {
					return
				}
				resolves.Add(1)
				if err != nil || len(res.Endpoints) != len(providers) {
					wrong.Add(1)
					lastWrong.Store(fmt.Sprintf("%s: %+v %v", c.Node, res, err))
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	itest.Eventually(t, 30*time.Second, "consumers resolve both providers", func() error {
		if resolves.Load() < 4 {
			return fmt.Errorf("%d resolves", resolves.Load())
		}
		return nil
	})

	co := startCoordinator(t, env, "coord-a")
	p := plan(env, toURL, toDigest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})
	p.From = schema.Interface{Name: from.name, Kind: from.kind, Address: from.address, Package: schema.Package{URL: fromURL, Digest: fromDigest}}
	p.To = schema.Interface{Name: to.name, Kind: to.kind, Address: to.address, Package: schema.Package{URL: toURL, Digest: toDigest}}
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: p})
	co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)

	awaitSet(t, neu, svc, providers, true)
	awaitSet(t, old, svc, providers, false)
	for _, c := range consumers {
		res, err := c.Client(t).Resolve(context.Background(), svc)
		if err != nil || res.Via != to.name || len(res.Endpoints) != len(providers) {
			t.Fatalf("%s resolves %+v %v after finalize", c.Node, res, err)
		}
	}
	cancel()
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d resolves during the rollout lacked a provider; last: %v", n, resolves.Load(), lastWrong.Load())
	}
	t.Logf("%s -> %s: %d resolves during the rollout, all with both providers", from.name, to.name, resolves.Load())
}

// awaitSet waits until r resolves service to exactly the providers' own
// registrations (want) or to none of them (!want); mirrors do not count.
func awaitSet(t *testing.T, r registries.Registry, service string, providers []*itest.Agent, want bool) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, fmt.Sprintf("%s registered = %v", service, want), func() error {
		got, err := r.Resolve(context.Background(), service)
		if err != nil {
			return err
		}
		own := 0
		for _, in := range got {
			if in.Metadata[registries.MetaNode] != "" && in.Metadata["regshift-mirrored"] == "" {
				own++
			}
		}
		if want && own != len(providers) || !want && own != 0 {
			return fmt.Errorf("%d registered by their agents: %v", own, got)
		}
		return nil
	})
}
