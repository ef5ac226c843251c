package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

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
	// OperatorKeysDir holds the public keys whose requests are accepted;
	// AcceptUnsigned also accepts unsigned requests (a test or a closed
	// network only).
	OperatorKeysDir string
	AcceptUnsigned  bool
	// Listen is the HTTP API's address (127.0.0.1:7080).
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
	case c.Tick <= 0 || c.CommandTTL <= 0 || c.RegistryEvery <= 0:
		return errors.New("coordinator: Tick, CommandTTL and RegistryEvery must be positive")
	}
	return nil
}

// Runtime runs rollouts: it elects a leader among replicas, replays the
// state topic, folds events and requests through Step, persists each
// rollout's record before sending the commands it intends, runs the bridges,
// and serves the HTTP API.
type Runtime struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	signer  *events.Signer
	topics  events.Topics
	evm     *events.Metrics
	m       *runtimeMetrics
	newOpen func(kind, addr string, log *slog.Logger) (registries.Registry, error)

	mu       sync.Mutex
	leading  bool
	epoch    uint64
	rollouts map[string]*Rollout
	bridges  map[string]*runningBridge
	dirty    map[string]bool
	prod     *events.Producer
	enc      *events.Encoder
}

// NewRuntime checks the config and loads the signing key.
func NewRuntime(cfg Config, reg *prometheus.Registry, log *slog.Logger) (*Runtime, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	signer, err := events.LoadSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("coordinator: signing key: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	evm, err := events.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	m, err := newRuntimeMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Runtime{cfg: cfg, log: log.With("component", "coordinator", "replica", cfg.ID), reg: reg, signer: signer,
		topics: events.NewTopics(cfg.TopicPrefix), evm: evm, m: m, newOpen: openRegistry,
		rollouts: map[string]*Rollout{}, bridges: map[string]*runningBridge{}, dirty: map[string]bool{}}, nil
}

// Run serves the API and takes part in leader election until ctx ends.
func (rt *Runtime) Run(ctx context.Context) error {
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.CommandPartitions, tcfg.Security = rt.cfg.TopicPrefix, rt.cfg.CommandPartitions, rt.cfg.Security
	if _, err := events.Bootstrap(ctx, rt.cfg.Brokers, tcfg); err != nil {
		return fmt.Errorf("coordinator: topics: %w", err)
	}
	pcfg := events.DefaultProducerConfig(rt.cfg.Brokers)
	pcfg.Security = rt.cfg.Security
	prod, err := events.NewProducer(pcfg, rt.log, rt.evm)
	if err != nil {
		return err
	}
	defer prod.Close()
	rt.prod = prod
	rt.enc = &events.Encoder{Topics: rt.topics, Source: "regshift/coordinator/" + rt.cfg.ID, Signer: rt.signer}

	srv := &http.Server{Addr: rt.cfg.Listen, Handler: rt.api(), ReadHeaderTimeout: 5 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
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
	g.Go(func() error { return rt.elect(gctx) })
	err = g.Wait()
	rt.stopBridges()
	return err
}

// elect joins the coordinator group on the one-partition state topic: the
// member holding the partition leads, the others stand by. A generation
// ends on rebalance (a replica joined or died); leading ends with it.
func (rt *Runtime) elect(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: rt.cfg.TopicPrefix + "coordinator", Brokers: rt.cfg.Brokers, Topics: []string{rt.topics.State},
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, HeartbeatInterval: time.Second,
		JoinGroupBackoff: time.Second, WatchPartitionChanges: false, Dialer: rt.cfg.Security.Dialer(),
		Logger: kafka.LoggerFunc(func(string, ...any) {}), ErrorLogger: kafka.LoggerFunc(func(string, ...any) {}),
	})
	if err != nil {
		return err
	}
	defer group.Close()
	for ctx.Err() == nil {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			rt.log.Warn("leader election", "err", err)
			time.Sleep(time.Second)
			continue
		}
		if len(gen.Assignments[rt.topics.State]) == 0 {
			rt.log.Info("standing by", "generation", gen.ID)
			continue
		}
		done := make(chan struct{})
		gen.Start(func(gctx context.Context) {
			defer close(done)
			// Lead until the generation ends or the runtime stops.
			gctx, cancel := context.WithCancel(gctx)
			defer context.AfterFunc(ctx, cancel)()
			defer cancel()
			if err := rt.lead(gctx); err != nil && gctx.Err() == nil {
				rt.log.Error("leading failed", "err", err)
			}
		})
		select {
		case <-done:
		case <-ctx.Done():
			<-done
		}
	}
	return nil
}
