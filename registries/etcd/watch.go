package etcd

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/watch"
)

// Watch implements registries.Registry: it reads the service's instances,
// then follows an etcd watch of its prefix from the next revision. When the
// watch breaks it resumes from the last revision seen + 1; when that
// revision has been compacted away, or the cluster's revision went back
// (checked every WatchResync and before resuming), it reads the whole set
// again and goes on from there.
func (c *Client) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	return watch.Start(c.life, ctx, func(ctx context.Context, out chan []registries.Instance) {
		c.watch(ctx, service, out)
	})
}

// watchState is what a watch knows of its service: the instances by key
// (keys whose value cannot be read are left out) as of revision rev, and
// the last set it delivered.
type watchState struct {
	byKey map[string]registries.Instance
	rev   int64
	last  []registries.Instance
	sent  bool
}

// deliver offers the current set when it differs from the last one.
func (s *watchState) deliver(out chan []registries.Instance) {
	set := make([]registries.Instance, 0, len(s.byKey))
	for _, in := range s.byKey {
		set = append(set, in)
	}
	registries.SortInstances(set)
	if !s.sent || !watch.Same(s.last, set) {
		s.last, s.sent = set, true
		watch.Offer(out, set)
	}
}

// What ends one etcd watch.
type watchEnd int

const (
	watchDone   watchEnd = iota // the context ended
	watchResume                 // the watch broke: resume after the last revision
	watchReread                 // compacted or gone back: read the set again
)

func (c *Client) watch(ctx context.Context, service string, out chan []registries.Instance) {
	prefix := serviceKey(c.cfg.Prefix, service)
	b := watch.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	st := &watchState{}
	reread := true
	for {
		if reread {
			resp, err := call(ctx, c, "watch read", func(ctx context.Context) (*clientv3.GetResponse, error) {
				return c.kv.Get(ctx, prefix, clientv3.WithPrefix())
			})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				c.log.Debug("watch read failed; retrying", "service", service, "err", err)
				if !b.Wait(ctx) {
					return
				}
				continue
			}
			st.byKey = map[string]registries.Instance{}
			for _, kv := range resp.Kvs {
				if in, ok := c.parse(kv.Key, kv.Value); ok {
					st.byKey[string(kv.Key)] = in
				}
			}
			st.rev, reread = resp.Header.Revision, false
			st.deliver(out)
		}
		switch c.follow(ctx, prefix, st, out, &b) {
		case watchDone:
			return
		case watchReread:
			reread = true
		case watchResume:
			if !b.Wait(ctx) {
				return
			}
			reread = c.wentBack(ctx, prefix, st.rev)
		}
	}
}

// follow runs one etcd watch of prefix from st.rev+1, applying its events
// to st and delivering every changed set, until it ends.
func (c *Client) follow(ctx context.Context, prefix string, st *watchState, out chan []registries.Instance, b *watch.Backoff) watchEnd {
	// A member that lost its leader cancels the watch instead of going
	// silent; the next one may be served by another member.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	events := c.watcher.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(st.rev+1))
	check := time.NewTicker(c.cfg.WatchResync)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return watchDone
		case <-check.C:
			if c.wentBack(ctx, prefix, st.rev) {
				return watchReread
			}
		case resp, ok := <-events:
			switch {
			case ctx.Err() != nil:
				return watchDone
			case !ok:
				return watchResume
			case resp.CompactRevision != 0:
				c.log.Info("watch: revisions compacted past the last one seen; reading the set again",
					"prefix", prefix, "seen", st.rev, "compacted", resp.CompactRevision)
				return watchReread
			case resp.Err() != nil:
				c.log.Debug("watch broke; resuming", "prefix", prefix, "revision", st.rev+1, "err", resp.Err())
				return watchResume
			}
			b.Reset()
			for _, ev := range resp.Events {
				key := string(ev.Kv.Key)
				delete(st.byKey, key)
				if ev.Type == mvccpb.PUT {
					if in, ok := c.parse(ev.Kv.Key, ev.Kv.Value); ok {
						st.byKey[key] = in
					}
				}
			}
			st.rev = max(st.rev, resp.Header.Revision)
			st.deliver(out)
		}
	}
}

// wentBack reports whether the cluster's revision is now below rev: its
// store was restored or wiped, so resuming after rev would miss what it
// holds now. A failed check reports false (the next watch tries again).
func (c *Client) wentBack(ctx context.Context, prefix string, rev int64) bool {
	resp, err := call(ctx, c, "watch check", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.kv.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	})
	if err != nil || resp.Header.Revision >= rev {
		return false
	}
	c.log.Warn("the cluster's revision went back (restored or restarted without its data); reading the set again",
		"prefix", prefix, "seen", rev, "now", resp.Header.Revision)
	return true
}
