package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// HTTP fetches packages; http.DefaultClient when nil.
	HTTP *http.Client
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
		host:    NewHost(cfg, deps.Open, hub, deps.HTTP, log),
		topics:  events.NewTopics(cfg.Kafka.TopicPrefix),
		changed: make(chan struct{}, 1),
	}
	a.enc = &events.Encoder{Topics: a.topics, Source: "regshift/agent/" + cfg.Node, Now: deps.Now}
	return a, nil
}

// Run runs the agent until ctx ends, then shuts it down: deregisters when
// the config says so and closes every session.
func (a *Agent) Run(ctx context.Context) error {
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

	lis, err := ListenAPI(a.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen: %w", err)
	}
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
	g.Go(func() error { return a.consume(gctx) })
	a.log.Info("agent started", "role", a.cfg.Role, "primary", a.state().Primary, "api", lis.Addr().String())
	err = g.Wait()

	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	deregister := a.cfg.DeregisterOnShutdown == nil || *a.cfg.DeregisterOnShutdown
	if serr := a.host.Shutdown(sctx, a.state(), deregister); serr != nil {
		a.log.Warn("shutdown", "err", serr)
	}
	a.log.Info("agent stopped", "deregistered", deregister)
	return err
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
// re-route) and retries until every effect succeeded; then publishes Hello.
func (a *Agent) reconcileLoop(ctx context.Context) {
	wait := 200 * time.Millisecond
	for {
		a.work.Lock()
		s := a.state()
		var failed error
		for _, e := range Reconcile(s) {
			if err := a.host.Apply(ctx, s, e); err != nil {
				failed = err
				a.log.Warn("restoring interfaces", "err", err)
			}
		}
		a.work.Unlock()
		if failed == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
			wait = min(2*wait, 5*time.Second)
		}
	}
	a.notifyChange()
	for ctx.Err() == nil {
		if err := a.publish(ctx, a.hello()); err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// consume reads this node's commands partition from the persisted offset.
func (a *Agent) consume(ctx context.Context) error {
	var n int
	err := retryUntil(ctx, func() error {
		var err error
		n, err = events.PartitionCount(ctx, a.sec, a.cfg.Kafka.Brokers, a.topics.Commands)
		return err
	}, a.log, "commands topic")
	if err != nil {
		return nil // ctx ended
	}
	partition := events.Partition([]byte(a.cfg.Node), n)
	vcfg := events.DefaultCommandVerifierConfig(a.cfg.Node)
	vcfg.MaxSkew, vcfg.Now = a.cfg.Trust.MaxClockSkew, a.deps.Now
	v, err := events.NewCommandVerifier(vcfg, a.keys, replay{a})
	if err != nil {
		return err
	}
	ccfg := events.DefaultConsumerConfig(a.cfg.Kafka.Brokers, a.topics.Commands, a.topics.DLQ)
	ccfg.Security = a.sec
	c, err := events.NewPartitionConsumer(ccfg, partition, offsets{a}, commandDecoder{a: a, v: v}, a.handle, a.prod, a.log, a.evm)
	if err != nil {
		return err
	}
	a.log.Info("consuming commands", "topic", a.topics.Commands, "partition", partition, "of", n)
	return c.WithName(a.cfg.Node).Run(ctx)
}

// handle carries out one verified command: decide, execute, persist, ack.
func (a *Agent) handle(ctx context.Context, d events.Delivery) error {
	a.work.Lock()
	defer a.work.Unlock()
	start := a.deps.Now()
	cmd := d.Message.(schema.Command)
	h := cmd.Header()
	nc, err := toCommand(cmd)
	a.mu.Lock()
	old := a.cp
	a.mu.Unlock()
	var next State
	var ack Ack
	if err != nil {
		next, ack = old.State, Ack{CommandID: h.CommandID, Status: schema.AckRejected, Reason: ReasonMissingArgument + ": " + err.Error()}
	} else {
		next, ack = a.host.Execute(ctx, old.State, Decide(old.State, nc))
	}
	cp := old
	cp.State, cp.Epoch = next, max(old.Epoch, h.Epoch)
	// Unsaved work must not be acked: keep trying (a full or failing disk)
	// until it is saved or the agent stops.
	if err := retryUntil(ctx, func() error { return a.store.Save(cp) }, a.log, "the state to persist"); err != nil {
		return err
	}
	a.mu.Lock()
	a.cp.State, a.cp.Epoch = cp.State, cp.Epoch
	a.mu.Unlock()
	a.m.commands.WithLabelValues(string(nc.Kind), string(ack.Status)).Inc()
	a.m.commandSeconds.Observe(a.deps.Now().Sub(start).Seconds())
	a.log.Info("command", "id", h.CommandID, "kind", nc.Kind, "interface", nc.Interface, "outcome", ack.Status, "reason", ack.Reason)
	a.notifyChange()
	return a.publish(ctx, a.ackOf(h, ack))
}

func (a *Agent) ackOf(h schema.CommandHeader, ack Ack) *schema.Ack {
	return &schema.Ack{NodeID: a.cfg.Node, CommandID: h.CommandID, RolloutID: h.RolloutID, Epoch: h.Epoch,
		Outcome: ack.Status, Reason: ack.Reason, At: a.deps.Now().UTC()}
}

// toCommand maps a wire command to the state machine's.
func toCommand(cmd schema.Command) (Command, error) {
	h := cmd.Header()
	switch c := cmd.(type) {
	case *schema.Install:
		if c.Interface.Package.Digest != h.PackageDigest {
			return Command{}, fmt.Errorf("the package digest %s differs from the signed header's %s", c.Interface.Package.Digest, h.PackageDigest)
		}
		return Command{ID: h.CommandID, Kind: schema.CommandInstall, Interface: c.Interface.Name, PackageURL: c.Interface.Package.URL, Digest: c.Interface.Package.Digest}, nil
	case *schema.Activate:
		return Command{ID: h.CommandID, Kind: schema.CommandActivate, Interface: c.Interface}, nil
	case *schema.SwitchBack:
		return Command{ID: h.CommandID, Kind: schema.CommandSwitchBack, Interface: c.From, To: c.To}, nil
	case *schema.Uninstall:
		return Command{ID: h.CommandID, Kind: schema.CommandUninstall, Interface: c.Interface}, nil
	case *schema.Resync:
		return Command{ID: h.CommandID, Kind: schema.CommandResync}, nil
	}
	return Command{}, fmt.Errorf("unknown command type %T", cmd)
}

func (a *Agent) publish(ctx context.Context, m schema.Message) error {
	rec, err := a.enc.Encode(m)
	if err != nil {
		return err
	}
	return a.prod.Publish(ctx, rec)
}

// commandDecoder verifies commands and answers those it refuses: a
// duplicate is acked done again (its work was done), any other refusal of a
// record keyed to this node is acked rejected with its reason. The record
// then goes where the transport sends it (skipped or dead-lettered).
type commandDecoder struct {
	a *Agent
	v *events.CommandVerifier
}

func (d commandDecoder) Decode(rec kafka.Message) (events.Delivery, error) {
	del, err := d.v.Decode(rec)
	if err == nil || errors.Is(err, events.ErrSkip) {
		return del, err
	}
	reason, _ := events.ReasonOf(err)
	// The body is not trusted here: it only addresses the answer.
	var claimed schema.CommandHeader
	_ = json.Unmarshal(rec.Value, &claimed)
	if claimed.CommandID == "" {
		claimed.CommandID = header(rec, "ce_id")
	}
	ack := Ack{CommandID: claimed.CommandID, Status: schema.AckRejected, Reason: string(reason) + ": " + err.Error()}
	if reason == events.ReasonDuplicate {
		ack = Ack{CommandID: claimed.CommandID, Status: schema.AckDone, Reason: ReasonDuplicate}
	}
	d.a.m.commands.WithLabelValues("unverified", string(ack.Status)).Inc()
	d.a.log.Warn("command refused", "id", claimed.CommandID, "reason", reason, "err", err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if perr := d.a.publish(ctx, d.a.ackOf(claimed, ack)); perr != nil {
		d.a.log.Warn("could not answer a refused command", "id", claimed.CommandID, "err", perr)
	}
	return del, err
}

func header(rec kafka.Message, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// replay lets the verifier read the persisted epoch and applied ids.
type replay struct{ a *Agent }

func (r replay) HighestEpoch() uint64 {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.cp.Epoch
}

func (r replay) Applied(id string) bool {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.cp.State.applied(id)
}

// offsets keeps the commands partition's position in the checkpoint.
type offsets struct{ a *Agent }

func (o offsets) Load(context.Context) (int64, error) {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	return o.a.cp.CommandsOffset, nil
}

func (o offsets) Save(_ context.Context, next int64) error {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	cp := o.a.cp
	cp.CommandsOffset = next
	if err := o.a.store.Save(cp); err != nil {
		return err
	}
	o.a.cp = cp
	return nil
}

func (a *Agent) notifyChange() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// healthLoop publishes Health every HealthInterval and on every change.
func (a *Agent) healthLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.changed:
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.HealthInterval)
		obs := a.host.Observe(octx, a.state(), a.deps.Now())
		cancel()
		a.mu.Lock()
		a.lastObs = obs
		a.mu.Unlock()
		if err := a.publish(ctx, a.healthOf(obs)); err != nil && ctx.Err() == nil {
			a.log.Warn("publish health", "err", err)
		}
	}
}

func (a *Agent) healthOf(o Observation) *schema.Health {
	h := &schema.Health{NodeID: a.cfg.Node, ObservedAt: o.At.UTC()}
	for _, i := range o.Interfaces {
		detail := i.Detail
		if len(i.Missing) > 0 {
			detail = strings.TrimSpace(detail + " missing: " + strings.Join(i.Missing, ","))
		}
		if i.Primary {
			for _, p := range o.Services {
				if !p.Same {
					detail = strings.TrimSpace(fmt.Sprintf("%s %s differs from fallback (missing %v, extra %v)", detail, p.Service, p.Missing, p.Extra))
				}
			}
		}
		h.Interfaces = append(h.Interfaces, schema.InterfaceHealth{Name: i.Name, State: i.Phase, Status: i.Status,
			Resolved: i.Registered, Failed: int(i.Errors), Detail: detail})
	}
	return h
}

func (a *Agent) hello() *schema.Hello {
	s := a.state()
	a.mu.Lock()
	epoch := a.cp.Epoch
	a.mu.Unlock()
	h := &schema.Hello{NodeID: a.cfg.Node, AgentVersion: Version, StartedAt: a.started.UTC(), HighestEpoch: epoch, LastCommandID: s.LastCommand}
	if a.cfg.Role.Registers() {
		h.Roles = append(h.Roles, schema.RoleProvider)
		for _, svc := range a.cfg.Services {
			h.Services = append(h.Services, schema.Service{Name: svc.Name, Role: schema.RoleProvider})
		}
	}
	if a.cfg.Role.Resolves() {
		h.Roles = append(h.Roles, schema.RoleConsumer)
		for _, svc := range a.cfg.Consumes {
			h.Services = append(h.Services, schema.Service{Name: svc, Role: schema.RoleConsumer})
		}
	}
	for _, name := range s.Names() {
		in := s.Interfaces[name]
		is := schema.InterfaceState{Name: name, PackageDigest: in.Digest, State: in.Phase}
		if spec, err := a.host.Spec(s, name); err == nil {
			is.Kind, is.Address = spec.Type, spec.Settings.Address
		}
		h.Interfaces = append(h.Interfaces, is)
	}
	return h
}

// Status is the local API's /v1/status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	cp, obs := a.cp, a.lastObs
	a.mu.Unlock()
	st := Status{Node: cp.State.Node, Role: cp.State.Role, Primary: cp.State.Primary, Fallback: cp.State.Fallback,
		LastCommand: cp.State.LastCommand, CommandsOffset: cp.CommandsOffset, Epoch: cp.Epoch}
	for _, name := range cp.State.Names() {
		st.Interfaces = append(st.Interfaces, cp.State.Interfaces[name])
	}
	for _, o := range obs.Interfaces {
		for _, in := range a.host.Instances() {
			missing := false
			for _, id := range o.Missing {
				missing = missing || id == in.ID
			}
			if o.Expected == 0 {
				continue
			}
			st.Registrations = append(st.Registrations, Registration{Interface: o.Name, Service: in.Service, ID: in.ID,
				Address: in.Address, Port: in.Port, Registered: !missing, Error: o.Detail})
		}
	}
	return st
}

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

type metrics struct {
	commands       *prometheus.CounterVec
	commandSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "regshift", Subsystem: "agent", Name: "commands_total",
			Help: "Commands handled, by kind and outcome (done, failed, rejected)."}, []string{"kind", "outcome"}),
		commandSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "regshift", Subsystem: "agent", Name: "command_duration_seconds",
			Help: "Time from a verified command to its persisted outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.commandSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
