package registrytest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/regshift/regshift/registries"
)

// Bench runs the registry benchmarks on clients made by newRegistry:
//   - Register: registrations per second of fresh instances, one at a time;
//   - RegisterParallel: the same from GOMAXPROCS*4 goroutines;
//   - Resolve: latency of resolving a service of 20 instances.
func Bench(b *testing.B, newRegistry func(b *testing.B) registries.Registry) {
	b.Run("Register", func(b *testing.B) {
		r := newRegistry(b)
		svc := Unique("bench-reg")
		b.ResetTimer()
		for i := range b.N {
			if err := r.Register(context.Background(), Inst(svc, fmt.Sprintf("i%d", i), 1+i%65535)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registers/s")
	})
	b.Run("RegisterParallel", func(b *testing.B) {
		r := newRegistry(b)
		svc := Unique("bench-regp")
		b.SetParallelism(4)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				if err := r.Register(context.Background(), Inst(svc, fmt.Sprintf("i%d", i), 1+i%65535)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registers/s")
	})
	b.Run("Resolve", func(b *testing.B) {
		r := newRegistry(b)
		svc := Unique("bench-res")
		var want []registries.Instance
		for i := range 20 {
			in := Inst(svc, fmt.Sprintf("i%d", i), 2000+i)
			want = append(want, in)
			if err := r.Register(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
		ResolvesTo(b, r, svc, want)
		b.ResetTimer()
		for range b.N {
			got, err := r.Resolve(context.Background(), svc)
			if err != nil || len(got) != len(want) {
				b.Fatalf("resolve: %d instances, %v", len(got), err)
			}
		}
	})
}
