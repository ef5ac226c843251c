package zookeeper

import (
	"context"
	"errors"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/watch"
)

// Watch implements registries.Registry with ZooKeeper watches: one child
// watch on the service node (an exists watch while it is absent) and one
// data watch per instance node, each re-armed only after it fired, so a
// long watch holds a bounded number of watchers.
func (c *Client) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	return watch.Start(c.life, ctx, func(ctx context.Context, out chan []registries.Instance) {
		w := &watcher{c: c, service: service, out: out, kick: make(chan struct{}, 1),
			cache: map[string]*registries.Instance{}, armed: map[string]bool{}}
		w.run(ctx)
	})
}

type watcher struct {
	c       *Client
	service string
	out     chan []registries.Instance
	kick    chan struct{}

	mu    sync.Mutex
	fired []zk.Event // watch events not yet handled

	listArmed bool                            // a child or exists watch is pending
	armed     map[string]bool                 // instance ids with a pending data watch
	cache     map[string]*registries.Instance // last read per id; nil when unusable
	last      []registries.Instance
	sent      bool
}

func (w *watcher) run(ctx context.Context) {
	b := watch.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		w.handleFired()
		set, err := w.refresh(ctx)
		if err == nil {
			b.Reset()
			if !w.sent || !watch.Same(w.last, set) {
				w.last, w.sent = set, true
				watch.Offer(w.out, set)
			}
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.c.log.Debug("watch refresh failed; retrying", "service", w.service, "err", err)
		if !b.Wait(ctx) {
			return
		}
	}
}

// forward hands the single event of a ZooKeeper watch channel to the loop.
func (w *watcher) forward(ctx context.Context, ch <-chan zk.Event) {
	_ = w.c.life.Go(func() {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			w.mu.Lock()
			w.fired = append(w.fired, ev)
			w.mu.Unlock()
			select {
			case w.kick <- struct{}{}:
			default:
			}
		case <-ctx.Done():
		}
	})
}

// handleFired disarms the watches that fired; a watch lost with the session
// or connection disarms them all.
func (w *watcher) handleFired() {
	w.mu.Lock()
	fired := w.fired
	w.fired = nil
	w.mu.Unlock()
	for _, ev := range fired {
		switch {
		case ev.Type == zk.EventNotWatching:
			w.listArmed = false
			clear(w.armed)
		case ev.Path == w.c.servicePath(w.service):
			w.listArmed = false
		default:
			delete(w.armed, path.Base(ev.Path))
		}
	}
}

// refresh reads the service's instances, arming the watches that are not
// pending, and returns the usable ones sorted by id.
func (w *watcher) refresh(ctx context.Context) ([]registries.Instance, error) {
	if err := w.c.awaitSession(ctx); err != nil {
		return nil, err
	}
	var set []registries.Instance
	err := func() error { // synchronous: it owns the watcher's state
		ids, err := w.listChildren(ctx)
		if err != nil {
			return err
		}
		present := map[string]bool{}
		for _, id := range ids {
			present[id] = true
			if w.armed[id] {
				continue
			}
			data, _, ch, err := w.c.conn.GetW(w.c.instancePath(w.service, id))
			if errors.Is(err, zk.ErrNoNode) {
				delete(w.cache, id) // gone meanwhile; the child watch fires
				continue
			}
			if err != nil {
				return err
			}
			w.armed[id] = true
			w.forward(ctx, ch)
			if inst, ok := w.c.parse(w.service, id, data); ok {
				w.cache[id] = &inst
			} else {
				w.cache[id] = nil
			}
		}
		for id := range w.cache {
			if !present[id] {
				delete(w.cache, id)
			}
		}
		set = nil
		for _, inst := range w.cache {
			if inst != nil {
				set = append(set, inst.Clone())
			}
		}
		registries.SortInstances(set)
		return nil
	}()
	if err != nil {
		return nil, mapErr(err)
	}
	return set, nil
}

// listChildren lists the service node's children, arming a child watch (or
// an exists watch while the node is absent) unless one is pending.
func (w *watcher) listChildren(ctx context.Context) ([]string, error) {
	p := w.c.servicePath(w.service)
	for {
		if w.listArmed {
			ids, _, err := w.c.conn.Children(p)
			if errors.Is(err, zk.ErrNoNode) {
				return nil, nil // the pending watch fires on creation or deletion
			}
			return ids, err
		}
		ids, _, ch, err := w.c.conn.ChildrenW(p)
		if err == nil {
			w.listArmed = true
			w.forward(ctx, ch)
			return ids, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, err
		}
		exists, _, ech, err := w.c.conn.ExistsW(p)
		if err != nil {
			return nil, err
		}
		if !exists {
			w.listArmed = true
			w.forward(ctx, ech)
			return nil, nil
		}
		// Created between the two calls: the exists watch is pending but
		// will not fire for children; list again with a child watch.
		w.forward(ctx, ech)
	}
}
