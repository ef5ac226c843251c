package servers

import (
	"context"
	"testing"
)

// TestPrivateRestart starts a private server of each kind, kills it, sees its
// probe fail, restarts it on the same address and sees it answer again.
func TestPrivateRestart(t *testing.T) {
	probes := map[Kind]func(ctx context.Context, addr string) error{
		ZooKeeper: func(ctx context.Context, a string) error { return ProbeZooKeeper(ctx, []string{a}) },
		Kafka:     func(ctx context.Context, a string) error { return ProbeKafka(ctx, []string{a}) },
		Consul:    ProbeConsul,
		Etcd:      func(ctx context.Context, a string) error { return ProbeEtcd(ctx, []string{a}) },
		Eureka:    ProbeEureka,
	}
	for kind, probe := range probes {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p := StartPrivate(t, kind)
			if err := probe(ctx, p.Addr()); err != nil {
				t.Fatalf("private %s at %s does not answer after start: %v", kind, p.Addr(), err)
			}
			p.Kill(t)
			if err := probe(ctx, p.Addr()); err == nil {
				t.Fatalf("private %s at %s still answers after kill", kind, p.Addr())
			}
			p.Start(t)
			if err := probe(ctx, p.Addr()); err != nil {
				t.Fatalf("private %s at %s does not answer after restart: %v", kind, p.Addr(), err)
			}
			p.Stop(t)
			if err := probe(ctx, p.Addr()); err == nil {
				t.Fatalf("private %s at %s still answers after stop", kind, p.Addr())
			}
		})
	}
}
