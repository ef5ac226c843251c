package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/etcd"
	"github.com/regshift/regshift/registries/registrytest"
)

// registerAll registers insts through c and waits until c resolves them.
func registerAll(t *testing.T, c registries.Registry, insts ...registries.Instance) {
	t.Helper()
	for _, in := range insts {
		if err := c.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	registrytest.ResolvesTo(t, c, insts[0].Service, insts)
}

// awaitLatest waits until the watch's latest set is want.
func awaitLatest(t *testing.T, ch <-chan []registries.Instance, what string, want []registries.Instance) {
	t.Helper()
	registrytest.Eventually(t, registrytest.Patience, what, func() error {
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

// TestServerRestart kills a private etcd under a client with registrations
// and a watch: while it is down operations fail with the retriable error;
// once it is back (with its data: the lease and keys survive) every
// registration — also one attempted while it was down — is there and the
// watch, resumed after its last revision, follows.
func TestServerRestart(t *testing.T) {
	p := servers.StartPrivate(t, servers.Etcd)
	c := newClient(t, etcd.DefaultConfig(p.Addr()))
	svc := registrytest.Unique("restart")
	want := []registries.Instance{registrytest.Inst(svc, "a", 7000), registrytest.Inst(svc, "b", 7001)}
	registerAll(t, c, want...)
	ch, err := c.Watch(registrytest.Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "before the restart", want)

	p.Kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("ping while the server is down: %v, want ErrUnavailable", err)
	}
	late := registrytest.Inst(svc, "late", 7008)
	if err := c.Register(ctx, late); !registries.Retriable(err) {
		t.Fatalf("register while the server is down: %v, want a retriable error", err)
	}
	want = append(want, late)
	p.Start(t)

	registrytest.ResolvesTo(t, newClient(t, etcd.DefaultConfig(p.Addr())), svc, want)
	awaitLatest(t, ch, "the watch follows the restart", want)
	d := registrytest.Inst(svc, "d", 7009)
	if err := c.Register(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	awaitLatest(t, ch, "the watch sees a registration after the restart", append(want, d))
}

// TestServerLostItsData restarts a private etcd without its data: the
// client's lease is gone, so it grants a new one and restores its
// registrations, and a watch whose last revision is now in the store's
// future notices that the revision went back and reads the set again.
func TestServerLostItsData(t *testing.T) {
	p := servers.StartPrivate(t, servers.Etcd)
	cfg := etcd.DefaultConfig(p.Addr())
	cfg.WatchResync = time.Second
	c := newClient(t, cfg)
	svc := registrytest.Unique("wiped")
	want := []registries.Instance{registrytest.Inst(svc, "a", 7000), registrytest.Inst(svc, "b", 7001)}
	registerAll(t, c, want...)
	ch, err := c.Watch(registrytest.Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "before the data loss", want)
	// Revisions, also the watch's own, so that the wiped store's revisions
	// stay below the watch's for a while.
	raw := rawClient(t, []string{p.Addr()})
	for i := range 30 {
		if _, err := raw.Put(context.Background(), "/elsewhere", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	tmp := registrytest.Inst(svc, "tmp", 7003)
	if err := c.Register(context.Background(), tmp); err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "a registration after 30 revisions", append(want, tmp))
	if err := c.Deregister(context.Background(), svc, tmp.ID); err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "its deregistration", want)

	p.Stop(t)
	p.Wipe(t)
	p.Start(t)

	observer := newClient(t, etcd.DefaultConfig(p.Addr()))
	registrytest.ResolvesTo(t, observer, svc, want)
	late := registrytest.Inst(svc, "late", 7002)
	if err := c.Register(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	awaitLatest(t, ch, "the watch after the data loss", append(want, late))
}

// TestLeaseExpiredWhilePartitioned cuts the client off the cluster (a
// proxy in between drops every connection) until its lease expires and
// etcd deletes its keys; once the cut heals the client grants a new lease
// and puts its registrations back.
func TestLeaseExpiredWhilePartitioned(t *testing.T) {
	eps := servers.RequireEtcd(t)
	raw := rawClient(t, eps)
	proxy := startProxy(t, eps[0])
	cfg := etcd.DefaultConfig(proxy.addr())
	cfg.Prefix = uniquePrefix(t, raw) + "/services"
	cfg.LeaseTTL = 2 * time.Second
	cfg.RequestTimeout = time.Second
	c := newClient(t, cfg)
	svc := registrytest.Unique("partitioned")
	want := []registries.Instance{registrytest.Inst(svc, "a", 7000), registrytest.Inst(svc, "b", 7001)}
	registerAll(t, c, want...)
	key := cfg.Prefix + "/" + svc + "/a"
	before := leaseOf(t, raw, key)

	proxy.cut()
	registrytest.Eventually(t, registrytest.Patience, "the lease expired and its keys are gone", func() error {
		if id := leaseOf(t, raw, key); id != 0 {
			return fmt.Errorf("%s still under lease %x", key, id)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("ping while cut off: %v, want ErrUnavailable", err)
	}
	proxy.heal()

	observer := etcd.DefaultConfig(eps...)
	observer.Prefix = cfg.Prefix
	registrytest.ResolvesTo(t, newClient(t, observer), svc, want)
	if after := leaseOf(t, raw, key); after == before || after == 0 {
		t.Fatalf("restored under lease %x, want a new one (was %x)", after, before)
	}
}

// leaseOf returns the lease of key, 0 when the key does not exist.
func leaseOf(t *testing.T, raw *clientv3.Client, key string) clientv3.LeaseID {
	t.Helper()
	resp, err := raw.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}
