package zookeeper_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

// TestServerRestart kills a private ZooKeeper under a client with
// registrations and a watch: while it is down operations fail fast with the
// retriable error; once it is back every registration is there again and
// the watch still reports changes.
func TestServerRestart(t *testing.T) {
	p := servers.StartPrivate(t, servers.ZooKeeper)
	cfg := zookeeper.DefaultConfig(p.Addr())
	cfg.SessionTimeout = 4 * time.Second
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
	registrytest.Eventually(t, registrytest.Patience, "client sees the server down", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx); !errors.Is(err, registries.ErrUnavailable) {
			return errors.New("ping still answered")
		}
		return nil
	})
	// A registration attempted while the server is down fails with the
	// retriable error and is completed once the server is back.
	late := registrytest.Inst(svc, "late", 7008)
	if err := c.Register(context.Background(), late); !registries.Retriable(err) {
		t.Fatalf("register while down: %v, want a retriable error", err)
	}
	want = append(want, late)
	p.Start(t)

	registrytest.ResolvesTo(t, c, svc, want)
	observer := newClient(t, zookeeper.DefaultConfig(p.Addr()))
	registrytest.ResolvesTo(t, observer, svc, want)
	d := registrytest.Inst(svc, "d", 7009)
	registrytest.Eventually(t, registrytest.Patience, "register after restart", func() error {
		return c.Register(context.Background(), d)
	})
	registrytest.Eventually(t, registrytest.Patience, "watch reports d", func() error {
		for {
			select {
			case set := <-ch:
				if registrytest.SameSet(set, append(want, d)) == nil {
					return nil
				}
			default:
				return errors.New("not yet")
			}
		}
	})
}
