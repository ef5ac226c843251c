package nodeagent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

// BenchmarkProbeRound is one full round of consumer probes: 16 services of
// 4 endpoints each, resolved the same through the primary and the fallback
// (64 distinct TCP connects, 8 at once, to listeners on 127.0.0.1), with
// the sampling and the verdict. BenchmarkProbeFloor is the same 64
// connects, 8 at once, with nothing else: the raw floor.
func BenchmarkProbeRound(b *testing.B) {
	services, primary, fallback := probeFleet(b)
	p := newProber(Probe{PerService: 4, PerRound: 64, Timeout: time.Second, Failures: 3, Concurrency: 8})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := p.round(ctx, "consul", "zookeeper", services, primary, fallback); len(r.Primary) != len(services) {
			b.Fatalf("%d services probed, want %d", len(r.Primary), len(services))
		}
	}
}

func BenchmarkProbeFloor(b *testing.B) {
	_, primary, _ := probeFleet(b)
	var addrs []string
	for _, set := range primary {
		for _, in := range set {
			addrs = append(addrs, endpoint(in))
		}
	}
	var d net.Dialer
	ctx := context.Background()
	for b.Loop() {
		work := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for a := range work {
					c, err := d.DialContext(ctx, "tcp", a)
					if err != nil {
						b.Error(err)
						continue
					}
					_ = c.Close()
				}
			})
		}
		for _, a := range addrs {
			work <- a
		}
		close(work)
		wg.Wait()
	}
}

// probeFleet is 16 services of 4 endpoints each on distinct listeners,
// the same through both interfaces.
func probeFleet(b *testing.B) (services []string, primary, fallback map[string][]registries.Instance) {
	primary, fallback = map[string][]registries.Instance{}, map[string][]registries.Instance{}
	for s := range 16 {
		svc := fmt.Sprintf("svc-%02d", s)
		services = append(services, svc)
		for i := range 4 {
			in := at(svc, fmt.Sprintf("%s-%d", svc, i), acceptor(b))
			primary[svc] = append(primary[svc], in)
			fallback[svc] = append(fallback[svc], in)
		}
	}
	return services, primary, fallback
}
