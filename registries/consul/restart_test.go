package consul_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

// TestAgentRestart kills a private Consul under a client with registrations
// and a watch: while it is down operations fail with the retriable error;
// once it is back every registration — also one attempted while it was
// down — is passing again and the watch follows.
func TestAgentRestart(t *testing.T) {
	p := servers.StartPrivate(t, servers.Consul)
	cfg := consul.DefaultConfig()
	cfg.Address = p.Addr()
	cfg.CheckTTL = 3 * time.Second
	c := newClient(t, cfg)
	svc := registrytest.Unique("restart")
	var want []registries.Instance
	for _, id := range []string{"a", "b", "c"} {
		in := registrytest.Inst(svc, id, 7000+len(want))
		want = append(want, in)
		if err := c.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	registrytest.ResolvesTo(t, c, svc, want)
	ch, err := c.Watch(registrytest.Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}

	p.Kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("ping while the agent is down: %v, want ErrUnavailable", err)
	}
	late := registrytest.Inst(svc, "late", 7009)
	if err := c.Register(ctx, late); !registries.Retriable(err) {
		t.Fatalf("register while the agent is down: %v, want a retriable error", err)
	}
	want = append(want, late)
	p.Start(t)

	registrytest.ResolvesTo(t, c, svc, want)
	registrytest.Eventually(t, registrytest.Patience, "the watch follows the restart", func() error {
		for {
			select {
			case set := <-ch:
				if registrytest.SameSet(set, want) == nil {
					return nil
				}
			default:
				return errors.New("not yet")
			}
		}
	})
}
