package eureka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/watch"
)

// maxDeltaAge bounds how old a view may be for a delta to bring it up to
// date: a Eureka server's delta holds the changes of its last 3 minutes
// (retentionTimeInMSInDeltaQueue), so a view older than this third of that
// is fetched in full again, whatever the hash code says (it counts
// instances by status only and misses a change in place).
const maxDeltaAge = time.Minute

// Watch implements registries.Registry. Every watch of a client follows
// one fetch loop, which runs while any watch does: every WatchInterval it
// fetches the registry's recent changes (a delta), applies them to its
// view of the whole registry and checks the view against the hash code the
// server sent with the delta, fetching the registry in full when they
// differ (a change was missed: the server restarted, a delta was lost) or
// the view is too old for a delta (maxDeltaAge); then each watch delivers
// its service's UP instances when they changed. A new watch delivers at
// once from the loop's view when it has one. Failed fetches are retried
// every WatchInterval; the watches keep the last set meanwhile.
func (c *Client) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	return watch.Start(c.life, ctx, func(ctx context.Context, out chan []registries.Instance) {
		c.follow(ctx, service, out)
	})
}

// follow delivers the UP instances of service from each view the fetch
// loop publishes, when they differ from the last delivered.
func (c *Client) follow(ctx context.Context, service string, out chan []registries.Instance) {
	cur, err := c.watch.join(c.life, c.fetchLoop)
	if err != nil {
		return // closed
	}
	defer c.watch.leave()
	var (
		last []registries.Instance
		sent bool
	)
	for {
		if cur.ready {
			set := cur.view.up(service)
			if !sent || !watch.Same(last, set) {
				last, sent = set, true
				watch.Offer(out, set)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-cur.next:
			cur = c.watch.latest()
		}
	}
}

// watchers is what the watches of a client share: the count of open
// watches and the latest view the fetch loop published. The loop is the
// only publisher.
type watchers struct {
	mu      sync.Mutex
	open    int
	running bool
	head    *snapshot
}

// snapshot is one published view; next is closed once a newer one is out.
type snapshot struct {
	view  view
	ready bool // false for the placeholder before the first fetch
	next  chan struct{}
}

// join counts a new watch and returns the latest snapshot, starting the
// fetch loop (loop) on g when it does not run; registries.ErrClosed once g
// closed.
func (w *watchers) join(g interface{ Go(func()) error }, loop func()) (*snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open++
	if !w.running {
		w.head = &snapshot{next: make(chan struct{})}
		if err := g.Go(loop); err != nil {
			w.open--
			return nil, err
		}
		w.running = true
	}
	return w.head, nil
}

// leave counts a watch out.
func (w *watchers) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open--
}

// latest returns the latest snapshot.
func (w *watchers) latest() *snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head
}

// publish makes v the latest snapshot.
func (w *watchers) publish(v view) {
	s := &snapshot{view: v, ready: true, next: make(chan struct{})}
	w.mu.Lock()
	old := w.head
	w.head = s
	w.mu.Unlock()
	close(old.next)
}

// stay reports whether the fetch loop should go on: some watch is open.
// When none is, the loop is marked stopped and must return.
func (w *watchers) stay() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open == 0 {
		w.running = false
		return false
	}
	return true
}

// fetchLoop keeps the view of the registry up to date every WatchInterval
// while a watch is open, publishing each changed view (and the first).
func (c *Client) fetchLoop() {
	ctx := c.life.Context()
	var (
		v       view
		fetched time.Time // of v; zero before the first fetch
	)
	tick := time.NewTicker(c.cfg.WatchInterval)
	defer tick.Stop()
	for {
		next, changed, err := c.refreshView(ctx, v, c.now().Sub(fetched))
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Debug("watch fetch failed; retrying", "err", err, "in", c.cfg.WatchInterval)
		case err == nil:
			if changed || fetched.IsZero() {
				c.watch.publish(next)
			}
			v, fetched = next, c.now()
		}
		if !c.watch.stay() {
			return
		}
		select {
		case <-ctx.Done():
			c.watch.stop()
			return
		case <-tick.C:
		}
		if !c.watch.stay() {
			return
		}
	}
}

// stop marks the fetch loop stopped (the client closed).
func (w *watchers) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = false
}

// refreshView returns the registry's view one fetch after v (age old): a
// delta applied to v, or a full fetch when there is no v yet, v is older
// than maxDeltaAge, the server refuses deltas, or v with the delta does
// not hash as the server's registry did.
func (c *Client) refreshView(ctx context.Context, v view, age time.Duration) (next view, changed bool, err error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if v != nil && age <= maxDeltaAge {
		delta, err := c.api.delta(ctx)
		switch {
		case err == nil:
			next, changed := v.applyDelta(delta.Apps)
			if next.hashCode() == delta.AppsHashCode {
				return next, changed, nil
			}
			c.log.Debug("view after the delta does not match the server's hash code; fetching in full",
				"have", next.hashCode(), "server", delta.AppsHashCode)
		case !errors.Is(err, errDeltaDisabled):
			return nil, false, err
		}
	}
	full, err := c.api.apps(ctx)
	if err != nil {
		return nil, false, err
	}
	next = fromFull(full.Apps)
	return next, !sameView(v, next), nil
}

// sameView reports whether two views hold the same instances.
func sameView(a, b view) bool {
	if len(a) != len(b) {
		return false
	}
	for app, insts := range a {
		other, ok := b[app]
		if !ok || len(other) != len(insts) {
			return false
		}
		for k, in := range insts {
			if o, ok := other[k]; !ok || !sameInstance(in, o) {
				return false
			}
		}
	}
	return true
}
