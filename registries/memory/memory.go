// Package memory is an in-process registries.Registry for fast unit tests.
//
// A Store plays the registry server: clients made with New share it, own
// what they register, and re-register it after the store lost it
// (Store.Expire, like a ZooKeeper session expiry). Store.SetDown makes every
// client's operations fail with registries.ErrUnavailable, like a server that
// stopped answering. The conformance suite holds it to the same behaviour as
// the real adapters.
package memory

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
	"github.com/regshift/regshift/registries/internal/owned"
	"github.com/regshift/regshift/registries/internal/watch"
)

// Store is the shared state of an in-memory registry.
type Store struct {
	mu        sync.Mutex
	down      bool
	instances map[registries.Key]stored
	watchers  map[string]map[*watcher]struct{}
	clients   map[*Client]struct{}
}

// stored is one registered instance with the health its client set.
type stored struct {
	inst     registries.Instance
	critical bool
}

type watcher struct {
	ch   chan []registries.Instance
	last []registries.Instance
	sent bool
}

// NewStore returns an empty, answering store.
func NewStore() *Store {
	return &Store{
		instances: map[registries.Key]stored{},
		watchers:  map[string]map[*watcher]struct{}{},
		clients:   map[*Client]struct{}{},
	}
}

// SetDown makes the store stop (true) or resume (false) answering. When it
// resumes, clients complete the registrations that failed meanwhile.
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	clients := s.clientsLocked()
	s.mu.Unlock()
	if !down {
		for _, c := range clients {
			c.restoreLater()
		}
	}
}

func (s *Store) clientsLocked() []*Client {
	out := make([]*Client, 0, len(s.clients))
	for c := range s.clients {
		out = append(out, c)
	}
	return out
}

// Expire drops every registration, as a lost session or a server restart
// would, and tells each client to restore its own registrations. Watchers
// see the loss and the restoration.
func (s *Store) Expire() {
	s.mu.Lock()
	services := map[string]bool{}
	for k := range s.instances {
		services[k.Service] = true
	}
	clear(s.instances)
	for svc := range services {
		s.notifyLocked(svc)
	}
	clients := s.clientsLocked()
	s.mu.Unlock()
	for _, c := range clients {
		c.restoreLater()
	}
}

func (s *Store) resolveLocked(service string) []registries.Instance {
	var out []registries.Instance
	for k, st := range s.instances {
		if k.Service == service && !st.critical {
			out = append(out, st.inst.Clone())
		}
	}
	registries.SortInstances(out)
	return out
}

func (s *Store) notifyLocked(service string) {
	if len(s.watchers[service]) == 0 {
		return
	}
	set := s.resolveLocked(service)
	for w := range s.watchers[service] {
		w.offer(set)
	}
}

func (w *watcher) offer(set []registries.Instance) {
	if w.sent && watch.Same(w.last, set) {
		return
	}
	w.last, w.sent = set, true
	watch.Offer(w.ch, set)
}

// Client is one registry client of a Store.
type Client struct {
	store *Store
	log   *slog.Logger
	life  *life.Group
	owned owned.Set
}

var (
	_ registries.Registry     = (*Client)(nil)
	_ registries.HealthSetter = (*Client)(nil)
)

// New returns a client of store. A nil logger discards logs.
func New(store *Store, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{store: store, log: log.With("component", "registry-memory"), life: life.New()}
	store.mu.Lock()
	store.clients[c] = struct{}{}
	store.mu.Unlock()
	return c
}

// check returns the error an operation fails with before touching the store.
func (c *Client) check(ctx context.Context) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %w: %w", registries.ErrUnavailable, err)
	}
	return nil
}

// lock takes the store lock unless the store is down.
func (c *Client) lock(ctx context.Context) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	c.store.mu.Lock()
	if c.store.down {
		c.store.mu.Unlock()
		return fmt.Errorf("memory: store down: %w", registries.ErrUnavailable)
	}
	return nil
}

// Register implements registries.Registry.
func (c *Client) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	if err := c.check(ctx); err != nil {
		return err
	}
	inst = inst.Clone()
	c.owned.Put(inst) // restored when the store answers again
	if err := c.lock(ctx); err != nil {
		c.owned.Settle(inst, err)
		return err
	}
	defer c.store.mu.Unlock()
	// With the mark held now: a SetHealth that ran meanwhile is not undone.
	e, _ := c.owned.Get(inst.Key())
	c.store.instances[inst.Key()] = stored{inst: inst, critical: e.Health.Critical}
	c.store.notifyLocked(inst.Service)
	return nil
}

// Deregister implements registries.Registry.
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	if err := validKey(service, id); err != nil {
		return err
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.store.mu.Unlock()
	k := registries.Key{Service: service, ID: id}
	c.owned.Delete(k)
	if _, ok := c.store.instances[k]; !ok {
		return fmt.Errorf("memory: %s/%s: %w", service, id, registries.ErrNotFound)
	}
	delete(c.store.instances, k)
	c.store.notifyLocked(service)
	return nil
}

func validKey(service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	return registries.ValidateID(id)
}

// Resolve implements registries.Registry.
func (c *Client) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.store.mu.Unlock()
	return c.store.resolveLocked(service), nil
}

// Watch implements registries.Registry.
func (c *Client) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	w := &watcher{ch: make(chan []registries.Instance, 1)}
	if c.store.watchers[service] == nil {
		c.store.watchers[service] = map[*watcher]struct{}{}
	}
	c.store.watchers[service][w] = struct{}{}
	w.offer(c.store.resolveLocked(service))
	c.store.mu.Unlock()

	stop := func() {
		c.store.mu.Lock()
		delete(c.store.watchers[service], w)
		c.store.mu.Unlock()
	}
	err := c.life.Go(func() {
		select {
		case <-ctx.Done():
		case <-c.life.Context().Done():
		}
		stop()
		close(w.ch)
	})
	if err != nil {
		stop()
		return nil, err
	}
	return w.ch, nil
}

// Services implements registries.Registry.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.store.mu.Unlock()
	var out []string
	for k := range c.store.instances {
		if !slices.Contains(out, k.Service) {
			out = append(out, k.Service)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Ping implements registries.Registry.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	c.store.mu.Unlock()
	return nil
}

// Close removes this client's registrations, like a ZooKeeper session
// closing, and ends its watches.
func (c *Client) Close() error {
	if !c.life.Close(nil) {
		return nil
	}
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	delete(c.store.clients, c)
	for _, inst := range c.owned.Take() {
		if cur, ok := c.store.instances[inst.Key()]; ok && cur.inst.Equal(inst) {
			delete(c.store.instances, inst.Key())
			c.store.notifyLocked(inst.Service)
		}
	}
	return nil
}

// restoreLater re-registers what this client owns, in the background as a
// real client does after its session was lost.
func (c *Client) restoreLater() {
	_ = c.life.Go(func() {
		for _, inst := range c.owned.List() {
			if err := c.Register(c.life.Context(), inst); err != nil {
				c.log.Warn("restore registration", "service", inst.Service, "id", inst.ID, "err", err)
			}
		}
	})
}
