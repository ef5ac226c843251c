package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries/registrytest"
)

// BenchmarkConvergence1000 measures how long the bridge takes from start
// until Consul holds the mirrors of 1,000 ZooKeeper instances across 50
// services (parity in sync for all 50), on the real servers.
func BenchmarkConvergence1000(b *testing.B) {
	const services, perService = 50, 20
	s := needReal(b)
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
		target := s.consul(b, false) // its Close removes the mirrors again
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
		awaitConverged(b, source, target, names)
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

// awaitConverged polls until every service's parity is in sync.
func awaitConverged(b *testing.B, src, dst bridge.Resolver, names []string) {
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	registrytest.Eventually(b, 2*time.Minute, "convergence", func() error {
		for n := range pending {
			p, err := bridge.ParityOf(context.Background(), src, dst, n)
			if err != nil {
				return err
			}
			if !p.InSync() || len(p.Same) == 0 {
				return fmt.Errorf("%s: %d same, %d missing, %d extra", n, len(p.Same), len(p.Missing), len(p.Extra))
			}
			delete(pending, n)
		}
		return nil
	})
}
