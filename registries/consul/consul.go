package consul

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
	"github.com/regshift/regshift/registries/internal/owned"
)

// The Consul SDK calls this package makes.
type (
	agentAPI interface {
		ServiceRegisterOpts(reg *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
		ServiceDeregisterOpts(serviceID string, q *api.QueryOptions) error
		UpdateTTLOpts(checkID, output, status string, q *api.QueryOptions) error
	}
	healthAPI interface {
		Service(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
	}
	catalogAPI interface {
		Services(q *api.QueryOptions) (map[string][]string, *api.QueryMeta, error)
	}
	statusAPI interface {
		LeaderWithQueryOptions(q *api.QueryOptions) (string, error)
	}
)

// Client is a registries.Registry on a Consul agent.
type Client struct {
	cfg       Config
	log       *slog.Logger
	transport *http.Transport
	agent     agentAPI
	health    healthAPI
	catalog   catalogAPI
	status    statusAPI
	life      *life.Group
	owned     owned.Set // kept alive with their marks, restored when lost
}

var (
	_ registries.Registry     = (*Client)(nil)
	_ registries.HealthSetter = (*Client)(nil)
)

// New validates cfg and makes a client; it does not contact the agent. A nil
// logger discards logs.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, _, err := newClient(cfg, log)
	if err != nil {
		return nil, err
	}
	_ = c.life.Go(c.keepalive)
	return c, nil
}

// newClient makes a client of valid settings without its keepalive, and
// returns the SDK client it is built on for other writers (Catalog) to
// share its connections and lifetime.
func newClient(cfg Config, log *slog.Logger) (*Client, *api.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ac := api.DefaultNonPooledConfig()
	ac.Address, ac.Scheme, ac.Datacenter, ac.Token = cfg.Address, cfg.Scheme, cfg.Datacenter, cfg.Token
	ac.TLSConfig = api.TLSConfig{
		Address: cfg.TLS.ServerName, CAFile: cfg.TLS.CAFile, CAPem: cfg.TLS.CAPem,
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, CertPEM: cfg.TLS.CertPEM, KeyPEM: cfg.TLS.KeyPEM,
		InsecureSkipVerify: cfg.TLS.InsecureSkipVerify,
	}
	// Pool connections (keepalives and blocking queries share the agent),
	// and close them all on Close.
	ac.Transport.DisableKeepAlives = false
	ac.Transport.MaxIdleConnsPerHost = 64
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &Client{
		cfg: cfg, log: log.With("component", "registry-consul"), transport: ac.Transport,
		agent: client.Agent(), health: client.Health(), catalog: client.Catalog(), status: client.Status(),
		life: life.New(),
	}
	return c, client, nil
}

// serviceID is the Consul service ID of an instance.
func serviceID(service, id string) string { return service + ":" + id }

func checkID(service, id string) string { return "regshift:" + serviceID(service, id) }

// mapErr turns SDK errors into the registries sentinels: a status the agent
// answered with by its code; an untrusted certificate as a plain
// (non-retriable) error; anything else (no connection, timeout, cancelled)
// as unavailable.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusNotFound:
			return fmt.Errorf("consul %s: %w: %w", op, registries.ErrNotFound, err)
		case se.Code == http.StatusBadRequest:
			return fmt.Errorf("consul %s: %w: %w", op, registries.ErrInvalid, err)
		case se.Code == http.StatusTooManyRequests || se.Code >= 500:
			return fmt.Errorf("consul %s: %w: %w", op, registries.ErrUnavailable, err)
		}
		return fmt.Errorf("consul %s: %w", op, err)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("consul %s: the agent's certificate is not trusted (check TLS settings): %w", op, err)
	}
	return fmt.Errorf("consul %s: %w: %w", op, registries.ErrUnavailable, err)
}

func (c *Client) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

// Register implements registries.Registry: an agent service with a TTL
// check that this client keeps alive, passing unless SetHealth marked the
// instance critical.
func (c *Client) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	return c.owned.Register(ctx, inst, c.register) // the keepalive completes a failed attempt
}

// register writes the agent service of e with its check in e's status, so
// a re-registration never shows a critical instance passing, then the
// check's output when the mark has one (a registration cannot carry it).
func (c *Client) register(ctx context.Context, e owned.Entry) error {
	inst := e.Instance
	reg := &api.AgentServiceRegistration{
		ID: serviceID(inst.Service, inst.ID), Name: inst.Service,
		Address: inst.Address, Port: inst.Port, Tags: inst.Tags, Meta: inst.Metadata,
		Check: &api.AgentServiceCheck{
			CheckID: checkID(inst.Service, inst.ID), Name: "regshift TTL",
			TTL: c.cfg.CheckTTL.String(), Status: checkStatus(e.Health),
			DeregisterCriticalServiceAfter: c.cfg.DeregisterCriticalAfter.String(),
		},
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := c.agent.ServiceRegisterOpts(reg, opts); err != nil {
		return mapErr("register", err)
	}
	if e.Health == (owned.Health{}) {
		return nil
	}
	return mapErr("update check", c.updateCheck(ctx, e))
}

// Deregister implements registries.Registry. It removes the service from
// the agent this client talks to, whichever client registered it there.
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	if err := validKey(service, id); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	c.owned.Delete(registries.Key{Service: service, ID: id})
	return mapErr("deregister", c.agent.ServiceDeregisterOpts(serviceID(service, id), c.query(ctx)))
}

// Resolve implements registries.Registry: passing instances only.
func (c *Client) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	if c.life.Closed() {
		return nil, registries.ErrClosed
	}
	entries, _, err := c.health.Service(service, "", true, c.query(ctx))
	if err != nil {
		return nil, mapErr("resolve", err)
	}
	return instances(entries), nil
}

// instances converts health entries, sorted by id.
func instances(entries []*api.ServiceEntry) []registries.Instance {
	out := make([]registries.Instance, 0, len(entries))
	for _, e := range entries {
		s := e.Service
		addr := s.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		id := s.ID
		if rest, ok := strings.CutPrefix(s.ID, s.Service+":"); ok {
			id = rest
		}
		inst := registries.Instance{Service: s.Service, ID: id, Address: addr, Port: s.Port}
		if len(s.Tags) > 0 {
			inst.Tags = slices.Clone(s.Tags)
		}
		if len(s.Meta) > 0 {
			inst.Metadata = s.Meta
		}
		out = append(out, inst)
	}
	registries.SortInstances(out)
	return out
}

// Services implements registries.Registry: the catalog's services, without
// Consul's own.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	if c.life.Closed() {
		return nil, registries.ErrClosed
	}
	m, _, err := c.catalog.Services(c.query(ctx))
	if err != nil {
		return nil, mapErr("services", err)
	}
	out := make([]string, 0, len(m))
	for name := range m {
		if name != "consul" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Ping implements registries.Registry: the agent answers and knows a
// leader.
func (c *Client) Ping(ctx context.Context) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	leader, err := c.status.LeaderWithQueryOptions(c.query(ctx))
	if err != nil {
		return mapErr("ping", err)
	}
	if leader == "" {
		return fmt.Errorf("consul ping: %w: no leader", registries.ErrUnavailable)
	}
	return nil
}

// keepalive writes every owned check's status (passing, or critical as
// SetHealth marked it) each CheckTTL/3, on up to owned.KeepaliveWorkers
// concurrent requests, and re-registers an instance whose check the agent
// no longer knows (agent restarted, or the instance was reaped: while we
// could not reach the agent, or because it was marked critical
// DeregisterCriticalAfter long).
func (c *Client) keepalive() {
	owned.Keepalive(c.life.Context(), c.cfg.CheckTTL/3, &c.owned, c.refresh, c.log)
}

// refresh writes one instance's check as the client holds it (see write).
func (c *Client) refresh(ctx context.Context, k registries.Key) {
	_, err := c.owned.Apply(ctx, k, c.write)
	switch {
	case err == nil, ctx.Err() != nil:
	case registries.Retriable(err):
		c.log.Debug("keepalive", "service", k.Service, "id", k.ID, "err", err)
	default:
		c.log.Warn("keepalive", "service", k.Service, "id", k.ID, "err", err)
	}
}

// Close stops keeping checks alive and the watches, removes this client's
// instances when DeregisterOnClose is set (best effort, 5s), and closes
// idle connections.
func (c *Client) Close() error {
	if !c.life.Close(nil) {
		return nil
	}
	defer c.transport.CloseIdleConnections()
	if !c.cfg.DeregisterOnClose {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, in := range c.owned.Take() {
		if err := c.agent.ServiceDeregisterOpts(serviceID(in.Service, in.ID), c.query(ctx)); err != nil {
			errs = append(errs, mapErr("deregister on close", err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
