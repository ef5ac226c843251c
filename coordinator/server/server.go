package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/registries"
)

// Config is the coordinator runtime's configuration.
type Config struct {
	// ID names this replica (hostname by default); it is the leader name in
	// epoch claims.
	ID      string
	Brokers []string
	// TopicPrefix of every topic ("regshift.").
	TopicPrefix string
	// SigningKey is the coordinator's private key file (<key id>.key);
	// agents trust the matching .pub.
	SigningKey string
	// OperatorKeysDir holds the public keys whose requests are accepted,
	// with their roles (events.Keyring: <key id>.pub, "roles", "revoked"),
	// read again within seconds of a change; AcceptUnsigned also accepts
	// unsigned requests, as admin (a test or a closed network only).
	OperatorKeysDir string
	AcceptUnsigned  bool
	// CoordinatorKeysDir holds the public keys (<key id>.pub, optional
	// "revoked" file) of every coordinator replica: a state record or an
	// epoch claim is trusted only when one of them signed it, so it must
	// hold this replica's own key (checked when the server starts); read
	// again within seconds of a change. Empty: only this replica's own key
	// is trusted — right when every replica signs with the same SigningKey.
	CoordinatorKeysDir string
	// NodeKeysDir holds one public key per node, <node id>.pub (what
	// `regshift keys generate -id <node>` writes), and an optional "revoked"
	// file: an ack, health report or hello is accepted only when signed by
	// the key of the node it speaks for; read again within seconds of a
	// change (a node enrolled or revoked). AcceptUnsignedEvents also accepts
	// unsigned events (a test, a simulated fleet); a signed event is
	// verified all the same. With neither, no event could be accepted and
	// the config is refused.
	NodeKeysDir          string
	AcceptUnsignedEvents bool
	// Listen is the HTTP API's address (127.0.0.1:7080); Run binds it,
	// Serve takes a listener instead.
	Listen string
	// PackagesDir, when set, is served at /packages/ for agents to install from.
	PackagesDir string
	// Tick is how often time-based decisions run (1s).
	Tick time.Duration
	// CommandTTL is how long a command stays valid after it is sent (10m).
	CommandTTL time.Duration
	// RegistryEvery is how often the registry side is measured (2s).
	RegistryEvery time.Duration
	// CommandPartitions is P of the commands topic when it is created (12).
	CommandPartitions int
	// Security: TLS and SASL to the brokers; plaintext when zero.
	Security events.Security
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{ID: host, Brokers: []string{"127.0.0.1:9092"}, TopicPrefix: "regshift.", Listen: "127.0.0.1:7080",
		Tick: time.Second, CommandTTL: 10 * time.Minute, RegistryEvery: 2 * time.Second, CommandPartitions: 12}
}

func (c Config) validate() error {
	switch {
	case c.ID == "":
		return errors.New("coordinator: ID is empty")
	case len(c.Brokers) == 0:
		return errors.New("coordinator: no Brokers")
	case c.SigningKey == "":
		return errors.New("coordinator: SigningKey is empty: commands must be signed")
	case c.OperatorKeysDir == "" && !c.AcceptUnsigned:
		return errors.New("coordinator: no OperatorKeysDir and AcceptUnsigned is off: no request could be accepted")
	case c.NodeKeysDir == "" && !c.AcceptUnsignedEvents:
		return errors.New("coordinator: no NodeKeysDir and AcceptUnsignedEvents is off: no agent event could be accepted")
	case c.Tick <= 0 || c.CommandTTL <= 0 || c.RegistryEvery <= 0:
		return errors.New("coordinator: Tick, CommandTTL and RegistryEvery must be positive")
	}
	return nil
}

// Opener opens a registry client for an interface of a plan: its kind and
// address as the plan names them.
type Opener func(kind, addr string, log *slog.Logger) (registries.Registry, error)

// Deps are the runtime's dependencies; zero fields take real defaults.
type Deps struct {
	// Registry receives the runtime's and the transport's metrics (served at
	// /metrics); a new registry when nil.
	Registry *prometheus.Registry
	// Now is the clock every input is stamped with; time.Now when nil.
	Now func() time.Time
	// Open opens the bridge's registry clients; the real adapters when nil.
	Open Opener
}

// Server runs rollouts: it elects a leader among replicas, replays the
// state topic, and while it leads, one owner goroutine folds events,
// requests, registry reports and ticks through coordinator.Step, persisting
// each rollout's record before it sends the commands the record intends.
// It supervises the bridges and serves the HTTP API from immutable
// snapshots the owner publishes, so no request waits on the owner or Kafka.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	now     func() time.Time
	signer  *events.Signer
	topics  events.Topics
	evm     *events.Metrics
	m       *metrics
	bridges *bridges

	// operators are the keys whose requests are accepted, with their
	// roles, following OperatorKeysDir while the server runs; requests is
	// how requests are verified. nodes are the keys agent events are
	// verified with, following NodeKeysDir; coordinators the keys state
	// records are verified with, following CoordinatorKeysDir (or this
	// replica's own key alone).
	operators    *events.Keyring
	nodes        *events.Keyring
	coordinators *events.Keyring
	requests     events.RequestVerifierConfig

	statusMu sync.Mutex             // serializes changes of status
	status   atomic.Pointer[Health] // leader or standby, epoch: written by lead and followEpochs, read by /healthz
	view     atomic.Pointer[view]   // the rollouts as last published by the owner
	hub      *hub                   // the console's live streams
	relay    atomic.Pointer[events.Producer]

	state *events.StateVerifier                                            // verifies what is read of the state topic
	step  func(*coordinator.Rollout, coordinator.Input) coordinator.Output // coordinator.Step; a test plants a failing one
}

// New checks the config and loads the signing key and the coordinators'
// keyring.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	signer, err := events.LoadSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("coordinator: signing key: %w", err)
	}
	state, coordinators, err := stateVerifier(signer, cfg.CoordinatorKeysDir)
	if err != nil {
		return nil, fmt.Errorf("coordinator: coordinator keys: %w", err)
	}
	operators, err := keyring(cfg.OperatorKeysDir)
	if err != nil {
		return nil, fmt.Errorf("coordinator: operator keys: %w", err)
	}
	nodes, err := keyring(cfg.NodeKeysDir)
	if err != nil {
		return nil, fmt.Errorf("coordinator: node keys: %w", err)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Open == nil {
		deps.Open = openRegistry
	}
	evm, err := events.NewMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	log = log.With("component", "coordinator", "replica", cfg.ID)
	s := &Server{cfg: cfg, log: log, reg: deps.Registry, now: func() time.Time { return deps.Now().UTC() }, signer: signer,
		operators: operators, nodes: nodes, coordinators: coordinators, requests: events.DefaultRequestVerifierConfig(),
		topics: events.NewTopics(cfg.TopicPrefix), evm: evm, m: m, bridges: newBridges(deps.Open, deps.Registry, log), state: state, step: coordinator.Step}
	s.requests.AllowUnsigned, s.requests.Now = cfg.AcceptUnsigned, s.now
	s.status.Store(&Health{Replica: cfg.ID})
	s.view.Store(&view{rollouts: map[string]*rolloutView{}})
	s.hub = newHub(s)
	return s, nil
}

// Run binds cfg.Listen and serves; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("coordinator API: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln and takes part in leader election until ctx
// ends; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.CommandPartitions, tcfg.Security = s.cfg.TopicPrefix, s.cfg.CommandPartitions, s.cfg.Security
	if _, err := events.Bootstrap(ctx, s.cfg.Brokers, tcfg); err != nil {
		return fmt.Errorf("coordinator: topics: %w", err)
	}
	pcfg := events.DefaultProducerConfig(s.cfg.Brokers)
	pcfg.Security = s.cfg.Security
	pcfg.BatchSize = 1000 // a flush writes thousands of node records or commands at once
	prod, err := events.NewProducer(pcfg, s.log, s.evm)
	if err != nil {
		return err
	}
	defer prod.Close()
	s.relay.Store(prod)
	defer s.relay.Store(nil)
	ecfg := events.DefaultElectorConfig(s.cfg.Brokers, s.cfg.TopicPrefix+"coordinator", s.topics.State)
	ecfg.Security = s.cfg.Security
	elector, err := events.NewElector(ecfg, s.log)
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: s.api(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	// Shutdown waits for requests to end, and a console stream ends only
	// when told: tell it as the shutdown starts.
	srv.RegisterOnShutdown(s.hub.closeStreams)
	s.log.Info("API listening", "addr", ln.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("coordinator API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	// A key enrolled, removed or revoked, or a role changed, takes effect
	// within seconds, without a restart.
	for _, k := range []*events.Keyring{s.operators, s.nodes, s.coordinators} {
		if k.Dir() != "" {
			g.Go(func() error { return k.Watch(gctx, events.DefaultKeyringPoll, s.log, s.evm) })
		}
	}
	g.Go(func() error { s.hub.run(gctx.Done()); return nil })
	g.Go(func() error { return s.followEpochs(gctx) })
	g.Go(func() error {
		return elector.Run(gctx, func(lctx context.Context) {
			if err := s.lead(lctx, prod); err != nil && lctx.Err() == nil {
				s.log.Error("leading failed", "err", err)
			}
		})
	})
	err = g.Wait()
	s.bridges.stopAll()
	return err
}
