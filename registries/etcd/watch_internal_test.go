package etcd

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
)

// watcherFunc is a watchAPI of a function.
type watcherFunc func(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan

func (f watcherFunc) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	return f(ctx, key, opts...)
}

// TestWatchRereadsAfterCompaction: the revision a watch would resume from
// was compacted away (two instances were written after the watch read the
// set, then the store compacted) — the watch reads the set again, with
// them, and follows changes from there.
func TestWatchRereadsAfterCompaction(t *testing.T) {
	p := servers.StartPrivate(t, servers.Etcd)
	c, err := New(DefaultConfig(p.Addr()), registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{p.Addr()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })

	svc := registrytest.Unique("compacted")
	a, b, d := registrytest.Inst(svc, "a", 1), registrytest.Inst(svc, "b", 2), registrytest.Inst(svc, "d", 3)
	if err := c.Register(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	inner := c.watcher
	var once sync.Once
	c.watcher = watcherFunc(func(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
		once.Do(func() {
			var rev int64
			for _, in := range []registries.Instance{b, d} {
				val, err := encode(in)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := raw.Put(ctx, instanceKey(c.cfg.Prefix, in.Service, in.ID), string(val))
				if err != nil {
					t.Error(err)
					return
				}
				rev = resp.Header.Revision
			}
			if _, err := raw.Compact(ctx, rev); err != nil {
				t.Error(err)
			}
		})
		return inner.Watch(ctx, key, opts...)
	})
	ch, err := c.Watch(registrytest.Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "the set read again after the compaction", []registries.Instance{a, b, d})
	if err := c.Deregister(context.Background(), svc, "b"); err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "a change after the compaction", []registries.Instance{a, d})
}
