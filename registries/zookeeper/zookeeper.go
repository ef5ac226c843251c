package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
	"github.com/regshift/regshift/registries/internal/owned"
	"github.com/regshift/regshift/registries/internal/watch"
)

// Client is a registries.Registry on a ZooKeeper ensemble.
type Client struct {
	cfg  Config
	log  *slog.Logger
	conn *zk.Conn

	life *life.Group

	owned owned.Set // what we registered and must keep

	mu      sync.Mutex
	stateCh chan struct{}            // closed and replaced on every connection state change
	written map[registries.Key]int64 // the session each owned instance was last written in

	restoreKick chan struct{}
}

var _ registries.Registry = (*Client)(nil)

// New validates cfg and starts connecting; it does not wait for the
// ensemble, so a client of a registry that is down is made at once and its
// operations return registries.ErrUnavailable. A nil logger discards logs.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg: cfg, log: log.With("component", "registry-zookeeper"), life: life.New(),
		stateCh:     make(chan struct{}),
		written:     map[registries.Key]int64{},
		restoreKick: make(chan struct{}, 1),
	}
	dialer := cfg.Dialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout, zk.WithDialer(dialer),
		zk.WithLogger(zkLogger{c.log}), zk.WithLogInfo(false), zk.WithEventCallback(c.onEvent))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.conn = conn
	_ = c.life.Go(c.restoreLoop)
	return c, nil
}

// zkLogger routes go-zookeeper's log lines to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }

// onEvent runs on go-zookeeper's goroutines for session events; it must not
// block.
func (c *Client) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	c.mu.Lock()
	close(c.stateCh)
	c.stateCh = make(chan struct{})
	c.mu.Unlock()
	switch ev.State {
	case zk.StateHasSession:
		select {
		case c.restoreKick <- struct{}{}:
		default:
		}
	case zk.StateExpired:
		c.log.Warn("session expired; registrations are restored in the next session")
	}
}

// restoreLoop re-creates, whenever a session begins, the owned
// registrations that were last written in another session.
func (c *Client) restoreLoop() {
	ctx := c.life.Context()
	b := watch.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	var first int64 // the client's first session: nothing was lost in it
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.restoreKick:
		}
		for c.conn.State() == zk.StateHasSession {
			sid := c.conn.SessionID()
			if first == 0 {
				first = sid
			}
			restored, err := 0, error(nil)
			for _, in := range c.owned.List() {
				c.mu.Lock()
				current := c.written[in.Key()] == sid
				c.mu.Unlock()
				if current {
					continue
				}
				if err = c.putTracked(in); err != nil {
					break
				}
				restored++
			}
			if restored > 0 && sid != first {
				c.log.Info("registrations restored in new session", "count", restored, "session", fmt.Sprintf("%#x", sid))
			}
			if err == nil {
				b.Reset()
				break
			}
			c.log.Warn("restoring registrations", "err", err)
			if !b.Wait(ctx) {
				return
			}
		}
	}
}

// putTracked puts inst and records the session it was written in. The
// session is read before writing: should it change meanwhile, the record
// is stale and the restore writes inst again, which is harmless.
func (c *Client) putTracked(inst registries.Instance) error {
	sid := c.conn.SessionID()
	if err := c.put(inst); err != nil {
		return err
	}
	c.mu.Lock()
	c.written[inst.Key()] = sid
	c.mu.Unlock()
	return nil
}

func (c *Client) servicePath(service string) string { return c.cfg.BasePath + "/" + service }

func (c *Client) instancePath(service, id string) string {
	return c.cfg.BasePath + "/" + service + "/" + id
}

// call runs fn once a session exists, bounded by ctx even when the server
// stops answering mid-request; the error is mapped to the registries
// sentinels.
func call[T any](ctx context.Context, c *Client, op string, fn func() (T, error)) (T, error) {
	var zero T
	if err := c.awaitSession(ctx); err != nil {
		return zero, fmt.Errorf("zookeeper %s: %w", op, err)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() { v, err := fn(); done <- result{v, err} }()
	select {
	case r := <-done:
		if r.err != nil {
			return zero, fmt.Errorf("zookeeper %s: %w", op, mapErr(r.err))
		}
		return r.v, nil
	case <-ctx.Done():
		return zero, fmt.Errorf("zookeeper %s: %w: %w", op, registries.ErrUnavailable, ctx.Err())
	case <-c.life.Context().Done():
		return zero, fmt.Errorf("zookeeper %s: %w", op, registries.ErrClosed)
	}
}

// exec is call for operations without a result.
func exec(ctx context.Context, c *Client, op string, fn func() error) error {
	_, err := call(ctx, c, op, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// awaitSession returns nil when the client has a session, waiting up to
// ReconnectWait (or ctx) for one.
func (c *Client) awaitSession(ctx context.Context) error {
	timer := time.NewTimer(c.cfg.ReconnectWait)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ch := c.stateCh
		c.mu.Unlock()
		if c.life.Closed() {
			return registries.ErrClosed
		}
		state := c.conn.State()
		if state == zk.StateHasSession {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("%w: no session with %s (state %s)", registries.ErrUnavailable, strings.Join(c.cfg.Servers, ","), state)
		case <-ctx.Done():
			return fmt.Errorf("%w: no session (state %s): %w", registries.ErrUnavailable, state, ctx.Err())
		}
	}
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return fmt.Errorf("%w: %w", registries.ErrNotFound, err)
	case errors.Is(err, zk.ErrSessionExpired), errors.Is(err, zk.ErrSessionMoved):
		return fmt.Errorf("%w: %w", registries.ErrSessionLost, err)
	case errors.Is(err, zk.ErrClosing):
		return fmt.Errorf("%w: %w", registries.ErrClosed, err)
	case errors.Is(err, zk.ErrNoServer), errors.Is(err, zk.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", registries.ErrUnavailable, err)
	}
	return err
}

// Register implements registries.Registry: it creates (or takes over) the
// ephemeral znode of inst in this client's session.
func (c *Client) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	inst = inst.Clone()
	if c.life.Closed() {
		return registries.ErrClosed
	}
	c.owned.Put(inst)
	// Owned before written: a session that ends meanwhile restores it.
	err := exec(ctx, c, "register", func() error { return c.putTracked(inst) })
	c.owned.Settle(inst, err)
	return err
}

// put makes the ephemeral znode of inst exist in the current session with
// inst's data: create it (and its service node), update it when this
// session owns it, or delete and re-create it when another session or a
// persistent node holds the id (as Curator does).
func (c *Client) put(inst registries.Instance) error {
	data, err := encode(inst, c.cfg.PayloadClass, time.Now())
	if err != nil {
		return err
	}
	p := c.instancePath(inst.Service, inst.ID)
	var last error
	for range 8 {
		_, err := c.conn.Create(p, data, zk.FlagEphemeral, c.cfg.ACL)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, zk.ErrNoNode):
			last = c.ensureParents(inst.Service)
		case errors.Is(err, zk.ErrNodeExists):
			last = c.overwrite(p, data)
			if last == nil {
				return nil
			}
		default:
			return err
		}
		if last != nil && !errors.Is(last, zk.ErrNoNode) && !errors.Is(last, zk.ErrBadVersion) && !errors.Is(last, errTakeOver) {
			return last
		}
	}
	return fmt.Errorf("znode %s kept changing under us: %w", p, last)
}

var errTakeOver = errors.New("took over znode of another session")

// overwrite sets data on p when this session owns it; otherwise it deletes
// p so the caller's next create makes it ours, returning errTakeOver.
func (c *Client) overwrite(p string, data []byte) error {
	ok, stat, err := c.conn.Exists(p)
	if err != nil {
		return err
	}
	if !ok {
		return zk.ErrNoNode
	}
	if stat.EphemeralOwner == c.conn.SessionID() {
		_, err = c.conn.Set(p, data, stat.Version)
		return err
	}
	if err := c.conn.Delete(p, stat.Version); err != nil {
		return err
	}
	return errTakeOver
}

// ensureParents creates the base path (persistent) and the service's
// container node.
func (c *Client) ensureParents(service string) error {
	var p string
	for _, seg := range strings.Split(strings.TrimPrefix(c.cfg.BasePath, "/"), "/") {
		p += "/" + seg
		if _, err := c.conn.Create(p, nil, zk.FlagPersistent, c.cfg.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	_, err := c.conn.CreateContainer(c.servicePath(service), nil, zk.FlagContainer, c.cfg.ACL)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return err
	}
	return nil
}

// Forget stops keeping the instance service/id alive and restoring it,
// without touching the registry: someone else (its owner) has taken the
// key over (coordinator/bridge.Forgetter).
func (c *Client) Forget(service, id string) {
	c.owned.Delete(registries.Key{Service: service, ID: id})
}

// Deregister implements registries.Registry. It deletes the znode whoever
// owns it.
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	if err := registries.ValidateID(id); err != nil {
		return err
	}
	k := registries.Key{Service: service, ID: id}
	c.owned.Delete(k)
	c.mu.Lock()
	delete(c.written, k)
	c.mu.Unlock()
	return exec(ctx, c, "deregister", func() error { return c.conn.Delete(c.instancePath(service, id), -1) })
}

// Resolve implements registries.Registry: every parseable, enabled instance
// under the service's node.
func (c *Client) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	return call(ctx, c, "resolve", func() ([]registries.Instance, error) {
		kids, _, err := c.conn.Children(c.servicePath(service))
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return c.readAll(service, kids)
	})
}

// readAll reads the instances named by ids concurrently (go-zookeeper
// pipelines the requests on its one connection). Vanished nodes are
// skipped, unreadable ones logged and skipped.
func (c *Client) readAll(service string, ids []string) ([]registries.Instance, error) {
	type result struct {
		inst registries.Instance
		ok   bool
		err  error
	}
	res := make([]result, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			data, _, err := c.conn.Get(c.instancePath(service, id))
			if err != nil {
				if !errors.Is(err, zk.ErrNoNode) {
					res[i].err = err
				}
				return
			}
			res[i].inst, res[i].ok = c.parse(service, id, data)
		})
	}
	wg.Wait()
	var out []registries.Instance
	for _, r := range res {
		if r.err != nil {
			return nil, r.err
		}
		if r.ok {
			out = append(out, r.inst)
		}
	}
	registries.SortInstances(out)
	return out, nil
}

// parse decodes a znode's data, logging what cannot be used.
func (c *Client) parse(service, id string, data []byte) (registries.Instance, bool) {
	inst, enabled, err := decode(service, id, data)
	if err != nil {
		c.log.Warn("skipping unreadable instance", "service", service, "id", id, "err", err)
		return inst, false
	}
	return inst, enabled
}

// Services implements registries.Registry: the service nodes under the base
// path that have at least one instance.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	return call(ctx, c, "services", func() ([]string, error) {
		names, _, err := c.conn.Children(c.cfg.BasePath)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		keep := make([]bool, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i, n := range names {
			wg.Go(func() {
				ok, stat, err := c.conn.Exists(c.servicePath(n))
				keep[i] = ok && stat.NumChildren > 0
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		var out []string
		for i, n := range names {
			if keep[i] {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out, nil
	})
}

// Ping implements registries.Registry with a round trip to the server.
func (c *Client) Ping(ctx context.Context) error {
	return exec(ctx, c, "ping", func() error {
		_, _, err := c.conn.Exists("/")
		return err
	})
}

// Close ends the session: ZooKeeper deletes this client's ephemeral
// registrations at once. Watches end and their channels close.
func (c *Client) Close() error {
	c.life.Close(c.conn.Close)
	return nil
}
