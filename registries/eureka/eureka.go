package eureka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
	"github.com/regshift/regshift/registries/internal/owned"
)

// Client is a registries.Registry and registries.HealthSetter on a Eureka
// server's REST API.
type Client struct {
	cfg    Config
	log    *slog.Logger
	api    *api
	life   *life.Group
	owned  owned.Set // renewed with their marks, registered again when lost
	stamps stamps    // the lastDirtyTimestamp of each owned entry
	now    func() time.Time
	watch  watchers // the shared fetch loop of the watches (watch.go)
}

var (
	_ registries.Registry     = (*Client)(nil)
	_ registries.HealthSetter = (*Client)(nil)
)

// New validates cfg and makes a client; it does not contact the server. A
// nil logger discards logs.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg: cfg, log: log.With("component", "registry-eureka", "server", cfg.Address),
		api: newAPI(cfg), life: life.New(), now: time.Now,
	}
	_ = c.life.Go(c.keepalive)
	return c, nil
}

// Register implements registries.Registry: it registers the instance UP
// (DOWN when SetHealth marked it critical) with a lease this client renews
// every RenewalInterval. Registering an instance again replaces it: every
// change carries a newer lastDirtyTimestamp, which is how a Eureka server
// tells the newer of two copies.
func (c *Client) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	return c.owned.Register(ctx, inst, c.register) // the keepalive completes a failed attempt
}

// register writes e as an InstanceInfo with e's mark as its status.
func (c *Client) register(ctx context.Context, e owned.Entry) error {
	h := health{down: e.Health.Critical, output: e.Health.Output}
	if h.down && h.output == "" {
		h.output = "marked critical through regshift"
	}
	info := encode(e.Instance, h, c.stamps.of(e, c.now()),
		int(c.cfg.RenewalInterval/time.Second), int(c.cfg.LeaseDuration/time.Second))
	return c.api.register(ctx, info)
}

// Deregister implements registries.Registry: it cancels the instance's
// lease, whichever client registered it; ErrNotFound when the server holds
// no such instance.
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	if err := validKey(service, id); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	k := registries.Key{Service: service, ID: id}
	c.owned.Delete(k)
	c.stamps.forget(k)
	return c.api.cancel(ctx, appName(service), instanceID(id))
}

// Resolve implements registries.Registry: the UP instances of service, as
// the server's response cache has them (see the package doc).
func (c *Client) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	if c.life.Closed() {
		return nil, registries.ErrClosed
	}
	insts, err := c.api.app(ctx, appName(service))
	if err != nil {
		return nil, err
	}
	return upInstances(insts, service), nil
}

// Services implements registries.Registry: the services of every instance
// in the registry, whatever its status (a full fetch).
func (c *Client) Services(ctx context.Context) ([]string, error) {
	if c.life.Closed() {
		return nil, registries.ErrClosed
	}
	apps, err := c.api.apps(ctx)
	if err != nil {
		return nil, err
	}
	return serviceNames(apps.Apps), nil
}

// Ping implements registries.Registry: the server answers a registry read.
func (c *Client) Ping(ctx context.Context) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	return c.api.ping(ctx)
}

// keepalive renews every owned lease each RenewalInterval and registers
// again an instance whose lease the server does not know or holds older
// data of (see refresh).
func (c *Client) keepalive() {
	owned.Keepalive(c.life.Context(), c.cfg.RenewalInterval, &c.owned, c.refresh, c.log)
}

// refresh brings the server's copy of the instance with key k in line with
// the client's entry (see renew), logging what failed.
func (c *Client) refresh(ctx context.Context, k registries.Key) {
	_, err := c.owned.Apply(ctx, k, c.renew)
	switch {
	case err == nil, ctx.Err() != nil:
	case registries.Retriable(err):
		c.log.Debug("renew", "service", k.Service, "id", k.ID, "err", err)
	default:
		c.log.Warn("renew", "service", k.Service, "id", k.ID, "err", err)
	}
}

// renew renews e's lease, telling the server the lastDirtyTimestamp of e,
// and registers e again when the server answers 404: it lost the instance
// (restarted, evicted it, or an operator removed it) or holds an older
// copy (a registration or a mark that failed to reach it). The client
// renews again while the entry changed meanwhile (owned.Set.Apply), so a
// renewal that read the entry before a SetHealth never leaves its stale
// status behind.
func (c *Client) renew(ctx context.Context, e owned.Entry) error {
	rctx, cancel := c.bound(ctx)
	defer cancel()
	err := c.api.renew(rctx, appName(e.Instance.Service), instanceID(e.Instance.ID), c.stamps.of(e, c.now()))
	if !errors.Is(err, registries.ErrNotFound) {
		return err
	}
	if !c.owned.Current(e) {
		return nil // changed or deregistered meanwhile: Apply looks again
	}
	c.log.Info("instance unknown to the server or older there; registering again",
		"service", e.Instance.Service, "id", e.Instance.ID, "critical", e.Health.Critical)
	rctx, cancel = c.bound(ctx)
	defer cancel()
	return c.register(rctx, e)
}

// bound limits a request the client makes on its own to RequestTimeout.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// Close stops renewing and the watches, cancels this client's instances
// when DeregisterOnClose is set (best effort, RequestTimeout in all), and
// closes idle connections. Without DeregisterOnClose the instances stay
// until their leases expire.
func (c *Client) Close() error {
	if !c.life.Close(nil) {
		return nil
	}
	defer c.api.transport.CloseIdleConnections()
	if !c.cfg.DeregisterOnClose {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	var errs []error
	for _, in := range c.owned.Take() {
		err := c.api.cancel(ctx, appName(in.Service), instanceID(in.ID))
		if err != nil && !errors.Is(err, registries.ErrNotFound) {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// validKey checks an instance's service and id as Register does.
func validKey(service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	return registries.ValidateID(id)
}

// stamps gives each owned entry the lastDirtyTimestamp (Unix ms) it is
// registered and renewed with: one per version of the entry, later than
// the one of the previous version, so the server always takes the latest
// registration of this client for the newer one.
type stamps struct {
	mu sync.Mutex
	m  map[registries.Key]stamp
}

type stamp struct {
	version uint64
	ms      int64
}

// of returns the stamp of e, making one from now when e is a version the
// stamps have not seen.
func (s *stamps) of(e owned.Entry, now time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := e.Instance.Key()
	prev, ok := s.m[k]
	switch {
	case ok && prev.version == e.Version:
		return prev.ms
	case ok && prev.version > e.Version:
		return prev.ms - 1 // a stale copy, read before a change: older than the change
	}
	if s.m == nil {
		s.m = map[registries.Key]stamp{}
	}
	ms := max(now.UnixMilli(), prev.ms+1)
	s.m[k] = stamp{version: e.Version, ms: ms}
	return ms
}

// forget drops the stamp of k (deregistered).
func (s *stamps) forget(k registries.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}
