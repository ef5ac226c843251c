package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/registries/registrytest"
)

// BenchmarkConvergence1000 measures how long the bridge takes from start
// until Consul holds the mirrors of 1,000 ZooKeeper instances across 50
// services (parity in sync for all 50), on the real servers, written as
// agent services.
func BenchmarkConvergence1000(b *testing.B) {
	s := needReal(b)
	benchToParity(b, s, func() registries.Registry { return s.consul(b, false) }) // its Close removes the mirrors again
}

// BenchmarkBridgeCatalogToParity is BenchmarkConvergence1000 with the
// mirrors written as catalog entries on a node of their own (consul.Catalog,
// what the coordinator's bridge uses with Mirrors), a fresh node each time.
func BenchmarkBridgeCatalogToParity(b *testing.B) {
	s := needReal(b)
	benchToParity(b, s, func() registries.Registry {
		node, _ := s.mirrorNode(b) // removed with its entries at cleanup
		return s.catalog(b, node)
	})
}

// benchToParity times a bridge from start to parity of 1,000 ZooKeeper
// instances over 50 services in the target newTarget makes, once per b.N.
func benchToParity(b *testing.B, s realServers, newTarget func() registries.Registry) {
	const services, perService = 50, 20
	for range b.N {
		b.StopTimer()
		s.base = "/" + registrytest.Unique("regshift-bench") + "/services"
		provider := s.zk(b)
		prefix := registrytest.Unique("conv")
		var names []string
		for i := range services {
			svc := fmt.Sprintf("%s-%02d", prefix, i)
			names = append(names, svc)
			for j := range perService {
				if err := provider.Register(context.Background(), registrytest.Inst(svc, fmt.Sprintf("i%02d", j), 10000+j)); err != nil {
					b.Fatal(err)
				}
			}
		}
		source := s.zk(b)
		target := newTarget()
		cfg := bridge.DefaultConfig()
		cfg.Name = registrytest.Unique("bench-bridge")
		br, err := bridge.New(source, target, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		began := time.Now()
		go func() { done <- br.Run(ctx) }()
		awaitConverged(b, source, target, names, perService, 2*time.Minute)
		took := time.Since(began)
		b.StopTimer()
		b.ReportMetric(took.Seconds(), "s/converge")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = target.Close()
		_ = provider.Close()
	}
}

// awaitConverged polls until every service of names is in sync with n
// instances on each side.
func awaitConverged(tb testing.TB, src, dst bridge.Resolver, names []string, n int, within time.Duration) {
	tb.Helper()
	pending := map[string]bool{}
	for _, name := range names {
		pending[name] = true
	}
	registrytest.Eventually(tb, within, "convergence", func() error {
		for name := range pending {
			if err := converged(src, dst, name, n); err != nil {
				return err
			}
			delete(pending, name)
		}
		return nil
	})
}

// converged says how service's parity differs from n instances in sync.
func converged(src, dst bridge.Resolver, service string, n int) error {
	p, err := bridge.ParityOf(context.Background(), src, dst, service)
	if err != nil {
		return err
	}
	if !p.InSync() || len(p.Same) != n {
		return fmt.Errorf("%s: %d same, %d missing, %d extra; want %d in sync", service, len(p.Same), len(p.Missing), len(p.Extra), n)
	}
	return nil
}

// BenchmarkBridgeEtcdToParity is BenchmarkConvergence1000 into etcd (the
// mirrors on the bridge client's lease, under a fresh prefix).
func BenchmarkBridgeEtcdToParity(b *testing.B) {
	s := needReal(b)
	benchToParity(b, s, func() registries.Registry {
		return openTarget(b, registries.KindEtcd, open.Settings{Address: servers.RequireEtcd(b)[0], BasePath: "/" + registrytest.Unique("bench-etcd")})
	})
}

// BenchmarkBridgeEurekaToParity is BenchmarkConvergence1000 into Eureka
// (the mirrors renewed by the bridge's client; parity read as Eureka serves
// it, so its response cache's lag is part of the figure).
func BenchmarkBridgeEurekaToParity(b *testing.B) {
	s := needReal(b)
	benchToParity(b, s, func() registries.Registry {
		return openTarget(b, registries.KindEureka, open.Settings{Address: servers.RequireEureka(b)})
	})
}

// openTarget opens a bridge target of kind whose registrations its Close
// removes.
func openTarget(b *testing.B, kind registries.Kind, s open.Settings) registries.Registry {
	r, err := open.Open(kind, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	return r
}
