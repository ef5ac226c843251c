package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// InterfaceSpec is what it takes to open one interface's registry client:
// the start interface's settings from the config, or an installed package's
// manifest settings (file names resolved inside Dir).
type InterfaceSpec struct {
	Name     string
	Type     string // zookeeper | consul
	Settings ifacepkg.Settings
	// Dir is the unpacked package folder; empty for the start interface.
	Dir string
}

// File returns the path of a file the package carries (under files/).
func (s InterfaceSpec) File(name string) string {
	if name == "" || s.Dir == "" {
		return ""
	}
	return filepath.Join(s.Dir, ifacepkg.FilesDir, filepath.FromSlash(name))
}

// Opener opens a registry client for an interface. The runtime passes one
// that knows the real adapters; tests pass one over registries/memory.
type Opener func(ctx context.Context, spec InterfaceSpec) (registries.Registry, error)

// Host carries out the state machine's effects: it owns the host's registry
// clients, its registrations and the routing of its resolves.
type Host struct {
	cfg      Config
	open     Opener
	fetcher  *ifacepkg.Fetcher
	log      *slog.Logger
	resolver *resolver
	checks   *checks // the app checks of cfg.Services
	prober   *prober // a consumer's probes; used by Observe only

	mu      sync.Mutex
	clients map[string]registries.Registry
	errors  map[string]uint64 // failed operations per interface
	// primary is the interface the last SetResolveOrder made primary, and
	// primarySince when this run saw it become so (zero: not seen change,
	// e.g. restored at start).
	primary      string
	primarySince time.Time
}

// primaryChanged is when this run saw the primary interface change; zero
// when it has not.
func (h *Host) primaryChanged() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.primarySince
}

// NewHost returns a Host for cfg that publishes resolves to hub. It fetches
// packages within cfg.Fetch over transport, or over one with cfg.Fetch's
// connect and header timeouts when transport is nil.
func NewHost(cfg Config, open Opener, hub *Hub, transport http.RoundTripper, log *slog.Logger) *Host {
	return &Host{
		cfg: cfg, open: open, fetcher: ifacepkg.NewFetcher(cfg.fetchConfig(), transport), log: log,
		resolver: newResolver(hub, cfg.Consumes, cfg.ParityThreshold, log),
		checks:   newChecks(cfg.Services, time.Now()),
		prober:   newProber(cfg.Probe),
		clients:  map[string]registries.Registry{},
		errors:   map[string]uint64{},
	}
}

func (h *Host) countError(iface string) {
	h.mu.Lock()
	h.errors[iface]++
	h.mu.Unlock()
}

func (h *Host) errorsOf(iface string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errors[iface]
}

// ErrEffect wraps the failure of one effect; the ack names it.
var ErrEffect = errors.New("effect failed")

// Apply carries out one effect for state s (the state the effect's plan
// starts from or leads to: both name the same packages).
func (h *Host) Apply(ctx context.Context, s State, e Effect) error {
	var err error
	switch e := e.(type) {
	case FetchPackage:
		err = h.fetch(ctx, e)
	case Open:
		_, err = h.client(ctx, s, e.Interface)
	case Register:
		err = h.register(ctx, s, e.Interface)
	case Deregister:
		err = h.deregister(ctx, s, e.Interface)
	case SetResolveOrder:
		err = h.route(ctx, s, e)
	case Close:
		err = h.closeClient(e.Interface)
	case RemoveFiles:
		err = os.RemoveAll(h.interfaceDir(e.Interface))
	default:
		err = fmt.Errorf("unknown effect %T", e)
	}
	if err != nil {
		if name := effectInterface(e); name != "" {
			h.countError(name)
		}
		return fmt.Errorf("%w: %s: %w", ErrEffect, e, err)
	}
	return nil
}

// effectInterface names the interface an effect acts on.
func effectInterface(e Effect) string {
	switch e := e.(type) {
	case FetchPackage:
		return e.Interface
	case Open:
		return e.Interface
	case Register:
		return e.Interface
	case Deregister:
		return e.Interface
	case SetResolveOrder:
		return e.Primary
	case Close:
		return e.Interface
	case RemoveFiles:
		return e.Interface
	}
	return ""
}

// interfaceDir is where an interface's packages live.
func (h *Host) interfaceDir(name string) string {
	return filepath.Join(h.cfg.StateDir, "interfaces", name)
}

// packageDir is where the package with this digest is unpacked.
func (h *Host) packageDir(name, digest string) string {
	return filepath.Join(h.interfaceDir(name), strings.TrimPrefix(digest, "sha256:"))
}

func (h *Host) fetch(ctx context.Context, e FetchPackage) error {
	pkg, err := h.fetcher.Fetch(ctx, e.URL, e.Digest)
	if err != nil {
		return err
	}
	dir := h.packageDir(e.Interface, e.Digest)
	m, err := ifacepkg.Unpack(pkg, dir, ifacepkg.Limits{})
	if err != nil {
		return err
	}
	if m.Interface != e.Interface {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("%w: the package is for interface %q, the command for %q", ifacepkg.ErrBadManifest, m.Interface, e.Interface)
	}
	return nil
}

// Spec returns how to open the named interface in state s.
func (h *Host) Spec(s State, name string) (InterfaceSpec, error) {
	if name == h.cfg.Start.Name && s.Interfaces[name].Digest == "" {
		st := h.cfg.Start
		return InterfaceSpec{Name: name, Type: st.Type, Settings: ifacepkg.Settings{Address: st.Address, BasePath: st.BasePath}}, nil
	}
	in, ok := s.Interfaces[name]
	if !ok || in.Digest == "" {
		return InterfaceSpec{}, fmt.Errorf("interface %s has no installed package", name)
	}
	dir := h.packageDir(name, in.Digest)
	raw, err := os.ReadFile(filepath.Join(dir, ifacepkg.ManifestName))
	if err != nil {
		return InterfaceSpec{}, err
	}
	m, err := ifacepkg.ParseManifest(raw)
	if err != nil {
		return InterfaceSpec{}, err
	}
	return InterfaceSpec{Name: name, Type: m.Type, Settings: m.Settings, Dir: dir}, nil
}

// client returns the open client of an interface, opening it if needed.
func (h *Host) client(ctx context.Context, s State, name string) (registries.Registry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[name]; ok {
		return c, nil
	}
	spec, err := h.Spec(s, name)
	if err != nil {
		return nil, err
	}
	c, err := h.open(ctx, spec)
	if err != nil {
		return nil, err
	}
	h.clients[name] = c
	return c, nil
}

// Client returns the interface's client if it is open.
func (h *Host) Client(name string) (registries.Registry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[name]
	return c, ok
}

// Instances are this host's registrations, as it writes them everywhere.
func (h *Host) Instances() []registries.Instance {
	out := make([]registries.Instance, 0, len(h.cfg.Services))
	for _, svc := range h.cfg.Services {
		meta := map[string]string{registries.MetaNode: h.cfg.Node}
		for k, v := range svc.Meta {
			meta[k] = v
		}
		if p := instanceCheckPath(svc); p != "" {
			meta[registries.MetaCheckPath] = p
		}
		out = append(out, registries.Instance{Service: svc.Name, ID: svc.ID, Address: svc.Address, Port: svc.Port, Tags: svc.Tags, Metadata: meta})
	}
	return out
}

// register writes this host's registrations into the interface, each with
// its app check's status: an instance whose check is critical is marked so
// where the registry carries health, and left out (withdrawn) where not.
func (h *Host) register(ctx context.Context, s State, name string) error {
	c, err := h.client(ctx, s, name)
	if err != nil {
		return err
	}
	hs, carries := c.(registries.HealthSetter)
	for _, in := range h.Instances() {
		critical, output := h.checks.status(in.ID)
		if critical && !carries {
			continue
		}
		if err := c.Register(ctx, in); err != nil {
			return err
		}
		if critical {
			if err := hs.SetHealth(ctx, in.Service, in.ID, false, output); err != nil {
				return err
			}
		}
	}
	return nil
}

// instanceCheckPath is the path consumers may probe an instance on: its
// HTTP check's, when the check targets the instance's own address and port
// and the path is one a probe takes (probePath); else "".
func instanceCheckPath(svc Service) string {
	u, err := url.Parse(svc.Check.HTTP)
	if err != nil || u.Scheme != "http" || u.Host != net.JoinHostPort(svc.Address, strconv.Itoa(svc.Port)) {
		return ""
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if p == "" {
		p = "/"
	}
	return probePath(p)
}

// deregister removes this host's registrations from the interface. An
// interface that was never opened holds none of this run's registrations,
// but may hold a previous run's: it is opened when its package is there.
func (h *Host) deregister(ctx context.Context, s State, name string) error {
	c, ok := h.Client(name)
	if !ok {
		if _, err := h.Spec(s, name); err != nil {
			return nil // nothing installed, nothing registered
		}
		var err error
		if c, err = h.client(ctx, s, name); err != nil {
			return err
		}
	}
	for _, in := range h.Instances() {
		err := c.Deregister(ctx, in.Service, in.ID)
		switch {
		case err == nil, errors.Is(err, registries.ErrNotFound):
		case registries.Retriable(err):
			// Leaving an interface must not depend on it answering: the
			// client has dropped the registration and keeps it alive no
			// more, so the registry expires it (Consul's critical TTL,
			// ZooKeeper's session). Switching back from a dead registry is
			// exactly when this happens.
			h.countError(name)
			h.log.Warn("deregister from an unavailable registry; it will expire there", "interface", name, "service", in.Service, "id", in.ID, "err", err)
		default:
			return err
		}
	}
	return nil
}

func (h *Host) route(ctx context.Context, s State, e SetResolveOrder) error {
	h.mu.Lock()
	if h.primary != "" && h.primary != e.Primary {
		h.primarySince = time.Now() // a change this run saw; the first route after a start is none
	}
	h.primary = e.Primary
	h.mu.Unlock()
	if !h.cfg.Role.Resolves() {
		return nil
	}
	p, err := h.client(ctx, s, e.Primary)
	if err != nil {
		return err
	}
	var f registries.Registry
	if e.Fallback != "" {
		if f, err = h.client(ctx, s, e.Fallback); err != nil {
			return err
		}
	}
	h.resolver.route(e.Primary, p, e.Fallback, f)
	return nil
}

func (h *Host) closeClient(name string) error {
	h.mu.Lock()
	c, ok := h.clients[name]
	delete(h.clients, name)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	return c.Close()
}

// Shutdown stops routing, deregisters when asked to, and closes every
// client.
func (h *Host) Shutdown(ctx context.Context, s State, deregister bool) error {
	h.resolver.stop()
	var errs []error
	if deregister && h.cfg.Role.Registers() {
		for _, name := range s.Active() {
			if err := h.deregister(ctx, s, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	h.mu.Lock()
	names := make([]string, 0, len(h.clients))
	for n := range h.clients {
		names = append(names, n)
	}
	h.mu.Unlock()
	for _, n := range names {
		if err := h.closeClient(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Execute carries out a decision: every effect in order, then the decision's
// state and ack. When an effect fails it re-asserts the old state with
// Reconcile and returns the old state with a failed ack naming the effect;
// a re-sent command (same id) then tries again.
func (h *Host) Execute(ctx context.Context, old State, d Decision) (State, Ack) {
	for _, e := range d.Effects {
		// Effects that make the next state (fetch, open) need its view of the
		// packages; the others are the same in both.
		if err := h.Apply(ctx, d.Next, e); err != nil {
			h.log.Warn("effect failed; re-asserting the previous state", "command", d.Ack.CommandID, "err", err)
			for _, r := range Reconcile(old) {
				if rerr := h.Apply(ctx, old, r); rerr != nil {
					h.log.Error("reconcile after failed effect", "effect", r.String(), "err", rerr)
				}
			}
			return old, Ack{CommandID: d.Ack.CommandID, Status: schema.AckFailed, Reason: reasonOf(FailureReason(err), err.Error())}
		}
	}
	return d.Next, d.Ack
}

// Failure reasons of a failed ack, stable strings.
const (
	ReasonDigestMismatch  = "package-digest-mismatch"
	ReasonPackageRefused  = "package-refused"
	ReasonPackageFetch    = "package-fetch-failed"
	ReasonRegistryDown    = "registry-unavailable"
	ReasonRegistryRefused = "registry-refused"
	ReasonEffectFailed    = "effect-failed"
)

// FailureReason classifies an effect's error for the ack.
func FailureReason(err error) string {
	switch {
	case errors.Is(err, ifacepkg.ErrDigestMismatch):
		return ReasonDigestMismatch
	case errors.Is(err, ifacepkg.ErrUnsafePath), errors.Is(err, ifacepkg.ErrTooLarge), errors.Is(err, ifacepkg.ErrRefused),
		errors.Is(err, ifacepkg.ErrCorrupt), errors.Is(err, ifacepkg.ErrBadManifest):
		return ReasonPackageRefused
	case errors.Is(err, ifacepkg.ErrFetch):
		return ReasonPackageFetch
	case registries.Retriable(err):
		return ReasonRegistryDown
	case errors.Is(err, registries.ErrInvalid):
		return ReasonRegistryRefused
	default:
		return ReasonEffectFailed
	}
}
