package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// Version is reported in Hello.
var Version = "dev"

// Deps are the agent's dependencies; zero fields take real defaults.
type Deps struct {
	// Open opens registry clients; RealOpener when nil.
	Open Opener
	// Registry receives the agent's and the transport's metrics; a new
	// registry (served at /metrics on the local API) when nil.
	Registry *prometheus.Registry
	// Now is the clock the agent decides and stamps by (a command's validity
	// window, the times in acks, health and hello); time.Now when nil. Waits
	// (retry backoff, the health interval) use real timers.
	Now func() time.Time
	// PackageTransport carries package downloads; when nil, one with the
	// config's fetch timeouts. The total timeout and the redirect policy
	// hold either way.
	PackageTransport http.RoundTripper
	// Listener, when set, is where the local API is served, and
	// cfg.API.Listen is not bound (a test opens one on port 0 and reads its
	// address); otherwise Run opens cfg.API.Listen with ListenAPI. Run
	// closes it when it returns.
	Listener net.Listener
}

// Agent is the node agent: it restores the host's interfaces, consumes the
// commands partition of its node, carries out verified commands through the
// state machine, and publishes acks, health and hello.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	deps    Deps
	host    *Host
	hub     *Hub
	store   *Store
	keys    *events.Keyring
	topics  events.Topics
	prod    *events.Producer
	enc     *events.Encoder
	evm     *events.Metrics
	sec     events.Security
	m       *metrics
	started time.Time
	// verifier checks commands; set by consume before the first one.
	verifier *events.CommandVerifier

	mu      sync.Mutex
	cp      Checkpoint
	lastObs Observation
	changed chan struct{}
	// work serializes what changes the host — a command's effects and the
	// reconcile at start — so a reconcile of an older state never undoes a
	// command carried out meanwhile.
	work sync.Mutex
}

// NewAgent checks the config's files and prepares an agent; Run starts it.
func NewAgent(cfg Config, deps Deps, log *slog.Logger) (*Agent, error) {
	cfg.fill() // a config built in code takes the same derived defaults as a file
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log = log.With("component", "nodeagent", "node", cfg.Node)
	if deps.Open == nil {
		deps.Open = RealOpener(log)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	keys, err := events.LoadKeyring(cfg.Trust.KeysDir)
	if err != nil {
		return nil, fmt.Errorf("%w: trust.keysDir: %w", ErrConfig, err)
	}
	if keys.Len() == 0 {
		return nil, fmt.Errorf("%w: trust.keysDir: %s holds no *%s key: the agent would trust no command", ErrConfig, cfg.Trust.KeysDir, events.PublicKeyExt)
	}
	signer, err := events.LoadSigner(cfg.Identity.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: identity.signingKey: %w", ErrConfig, err)
	}
	sec, err := cfg.Kafka.Security()
	if err != nil {
		return nil, fmt.Errorf("%w: kafka: %w", ErrConfig, err)
	}
	store, err := NewStore(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("%w: stateDir: %w", ErrConfig, err)
	}
	evm, err := events.NewMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	hub := NewHub()
	a := &Agent{
		cfg: cfg, log: log, deps: deps, hub: hub, store: store, keys: keys, evm: evm, sec: sec, m: m,
		host:    NewHost(cfg, deps.Open, hub, deps.PackageTransport, log),
		topics:  events.NewTopics(cfg.Kafka.TopicPrefix),
		changed: make(chan struct{}, 1),
	}
	a.enc = &events.Encoder{Topics: a.topics, Source: "regshift/agent/" + cfg.Node, Signer: signer, Now: deps.Now}
	return a, nil
}

// Run runs the agent, its local API on Deps.Listener or cfg.API.Listen,
// until ctx ends, then shuts it down: deregisters when the config says so
// and closes every session.
func (a *Agent) Run(ctx context.Context) error {
	lis, err := a.listen()
	if err != nil {
		return err
	}
	defer lis.Close() // the API server's shutdown closed it unless Run failed before serving
	a.log.Info("local API listening", "addr", lis.Addr().String())
	a.started = a.deps.Now()
	if err := a.restore(); err != nil {
		return err
	}
	pcfg := events.DefaultProducerConfig(a.cfg.Kafka.Brokers)
	pcfg.Security = a.sec
	prod, err := events.NewProducer(pcfg, a.log, a.evm)
	if err != nil {
		return err
	}
	a.prod = prod
	defer prod.Close()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.deps.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/", NewAPIHandler(a.hub, a.Status, a.log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("local API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { a.reconcileLoop(gctx); return nil })
	g.Go(func() error { a.healthLoop(gctx); return nil })
	g.Go(func() error {
		a.host.checks.run(gctx, a.deps.Now, func(ctx context.Context, svc Service, passing bool, output string) {
			a.work.Lock() // not between a command's effects: its registrations carry the status it reads
			defer a.work.Unlock()
			a.host.setHealth(ctx, a.state(), svc, passing, output)
		}, a.notifyChange)
		return nil
	})
	g.Go(func() error { return a.consume(gctx) })
	g.Go(func() error { return a.keys.Watch(gctx, events.DefaultKeyringPoll, a.log, a.evm) }) // a revoked coordinator key is refused within seconds
	a.log.Info("agent started", "role", a.cfg.Role, "primary", a.state().Primary, "api", lis.Addr().String())
	err = g.Wait()
	a.shutdown()
	return err
}

// listen returns the local API's listener: Deps.Listener, or else one
// bound to cfg.API.Listen.
func (a *Agent) listen() (net.Listener, error) {
	if a.deps.Listener != nil {
		return a.deps.Listener, nil
	}
	lis, err := ListenAPI(a.cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api.listen: %w", err)
	}
	return lis, nil
}

// shutdown deregisters when the config says so and closes every session.
func (a *Agent) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	deregister := a.cfg.DeregisterOnShutdown == nil || *a.cfg.DeregisterOnShutdown
	if err := a.host.Shutdown(ctx, a.state(), deregister); err != nil {
		a.log.Warn("shutdown", "err", err)
	}
	a.log.Info("agent stopped", "deregistered", deregister)
}

// restore loads the checkpoint (or starts on the configured interface) and
// removes what an interrupted install left behind.
func (a *Agent) restore() error {
	cp, ok, err := a.store.Load()
	if err != nil {
		return err
	}
	if !ok {
		s, err := NewState(a.cfg.Node, a.cfg.Role, a.cfg.Start.Name)
		if err != nil {
			return err
		}
		cp = Checkpoint{State: s, CommandsOffset: kafka.FirstOffset}
		if err := a.store.Save(cp); err != nil {
			return err
		}
	}
	if cp.State.Node != a.cfg.Node || cp.State.Role != a.cfg.Role {
		return fmt.Errorf("%w: %s holds the state of node %s (%s), the config says %s (%s)",
			ErrCheckpoint, a.store.Path(), cp.State.Node, cp.State.Role, a.cfg.Node, a.cfg.Role)
	}
	stale, _ := filepath.Glob(filepath.Join(a.cfg.StateDir, "interfaces", "*", ".*.unpack-*"))
	for _, p := range stale {
		a.log.Info("removing an interrupted unpack", "path", p)
		_ = os.RemoveAll(p)
	}
	a.mu.Lock()
	a.cp = cp
	a.mu.Unlock()
	return nil
}

func (a *Agent) state() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cp.State
}

// reconcileLoop makes the world match the state at start (re-register,
// re-route), retrying until every effect succeeded; then says hello.
func (a *Agent) reconcileLoop(ctx context.Context) {
	if err := retryUntil(ctx, func() error { return a.reconcile(ctx) }, a.log, "the interfaces to be restored"); err != nil {
		return // ctx ended
	}
	a.notifyChange()
	a.sayHello(ctx)
}

// reconcile carries out the effects that re-assert the current state; its
// error joins those of every effect that failed.
func (a *Agent) reconcile(ctx context.Context) error {
	a.work.Lock()
	defer a.work.Unlock()
	s := a.state()
	var errs []error
	for _, e := range Reconcile(s) {
		if err := a.host.Apply(ctx, s, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) publish(ctx context.Context, m schema.Message) error {
	rec, err := a.enc.Encode(m)
	if err != nil {
		return err
	}
	return a.prod.Publish(ctx, rec)
}

// retryUntil calls f until it succeeds, waiting 200ms after the first
// failure and twice as long after each next one (at most 5s); it returns
// ctx's error when ctx ends first.
func retryUntil(ctx context.Context, f func() error, log *slog.Logger, what string) error {
	wait := 200 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		log.Warn("waiting for "+what, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
			wait = min(2*wait, 5*time.Second)
		}
	}
}
