package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// Source is what the bridge reads: the registry the fleet moves from.
type Source interface {
	Services(ctx context.Context) ([]string, error)
	Resolve(ctx context.Context, service string) ([]registries.Instance, error)
	Watch(ctx context.Context, service string) (<-chan []registries.Instance, error)
}

// Target is what the bridge writes: the registry the fleet moves to. Its
// registrations must outlive a bridge restart for the restart to be
// seamless (for Consul: a consul.Catalog, whose entries need no keepalive,
// or the agent client with DeregisterOnClose off).
type Target interface {
	Services(ctx context.Context) ([]string, error)
	Resolve(ctx context.Context, service string) ([]registries.Instance, error)
	Register(ctx context.Context, inst registries.Instance) error
	Deregister(ctx context.Context, service, id string) error
}

// Durable is a Target whose entries outlive the client that wrote them and
// need no session or keepalive of it (Consul catalog entries): a bridge
// started anew adopts the exact mirrors it finds instead of writing them
// again, so a new leader's first full sync over 10,000 mirrors writes
// nothing. A Target that is not Durable (ZooKeeper ephemeral nodes, agent
// services kept alive by their client) has every mirror written again by
// the new run, which then owns it.
type Durable interface{ Durable() bool }

// Forgetter is a Target that keeps what it registered alive and restores
// it after the registry lost it (ZooKeeper's ephemeral nodes, restored on
// a new session). Where an instance has one place per key, its owner
// taking the key over (a provider registering itself in the new registry)
// ends the mirror there; Forget then makes the client stop restoring it,
// so a later session loss of the bridge's client does not take the key
// back from its owner.
type Forgetter interface {
	Forget(service, id string)
}

// Bridge mirrors a Source into a Target; see the package doc.
type Bridge struct {
	src     Source
	dst     Target
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	writtenMu sync.Mutex
	written   map[registries.Key]registries.Instance // mirrors this run put (or adopted, when durable)
	durable   bool                                   // dst's entries outlive their writer (see Durable)

	pendingMu sync.Mutex
	pending   map[string][]registries.Instance // latest watched set per service
	watching  map[string]bool                  // services with a live source watch
	kick      chan struct{}

	// Convergence: fullDone once a full sync of this run read every
	// service; synced holds the services this run has read in both
	// registries and written (successfully or not) at least once.
	fullDone atomic.Bool
	syncedMu sync.Mutex
	synced   map[string]bool
	resync   chan struct{} // asks Run for a full sync soon
}

// New validates cfg and makes a bridge; Run starts it. A nil logger
// discards logs.
func New(src Source, dst Target, cfg Config, log *slog.Logger) (*Bridge, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics: %w", ErrConfig, err)
	}
	d, _ := dst.(Durable)
	return &Bridge{
		src: src, dst: dst, cfg: cfg, metrics: m, durable: d != nil && d.Durable(),
		log:      log.With("component", "bridge", "bridge", cfg.Name),
		written:  map[registries.Key]registries.Instance{},
		pending:  map[string][]registries.Instance{},
		watching: map[string]bool{},
		kick:     make(chan struct{}, 1),
		synced:   map[string]bool{},
		resync:   make(chan struct{}, 1),
	}, nil
}

// Run mirrors until ctx ends, then returns nil once its watches stopped.
// Failures are logged, counted and retried; they do not end Run. What it
// wrote stays in the target.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var watches sync.WaitGroup
	defer watches.Wait()
	defer cancel()

	next := time.Duration(0) // the first full sync runs at once
	timer := time.NewTimer(next)
	defer timer.Stop()
	due := time.Now()
	// soon brings the next full sync forward to RetryInterval from now.
	soon := func() {
		if time.Until(due) > b.cfg.RetryInterval {
			due = time.Now().Add(b.cfg.RetryInterval)
			timer.Reset(b.cfg.RetryInterval)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			next = b.cfg.ResyncInterval
			if err := b.fullSync(ctx, func(service string) { b.watch(ctx, service, &watches) }); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if registries.Retriable(err) {
					next = b.cfg.RetryInterval
				}
				b.log.Warn("full sync incomplete", "err", err, "next in", next)
			}
			due = time.Now().Add(next)
			timer.Reset(next)
		case <-b.resync:
			soon() // a service appeared that no sync of this run has seen
		case <-b.kick:
			for service, set := range b.takePending() {
				if _, err := b.syncService(ctx, service, set); err != nil && ctx.Err() == nil {
					b.log.Warn("service sync failed; the next full sync retries", "service", service, "err", err)
					if registries.Retriable(err) {
						soon()
					}
				}
			}
		}
	}
}

// watch starts watching service unless already watching it. A watch that
// ends (its channel closes) is restarted by the next full sync.
func (b *Bridge) watch(ctx context.Context, service string, wg *sync.WaitGroup) {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	if b.watching[service] {
		return
	}
	ch, err := b.src.Watch(ctx, service)
	if err != nil {
		b.log.Warn("watch source service", "service", service, "err", err)
		return
	}
	b.watching[service] = true
	wg.Go(func() {
		defer func() {
			b.pendingMu.Lock()
			delete(b.watching, service)
			b.pendingMu.Unlock()
		}()
		for set := range ch {
			b.pendingMu.Lock()
			b.pending[service] = set
			b.pendingMu.Unlock()
			select {
			case b.kick <- struct{}{}:
			default:
			}
		}
	})
}

func (b *Bridge) takePending() map[string][]registries.Instance {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	p := b.pending
	b.pending = map[string][]registries.Instance{}
	return p
}

// fullSync syncs every service the source or the target knows, calling
// onSource for each source service.
func (b *Bridge) fullSync(ctx context.Context, onSource func(service string)) (err error) {
	start := time.Now()
	defer func() {
		b.metrics.syncs.WithLabelValues("full", result(err)).Inc()
		b.metrics.duration.WithLabelValues("full").Observe(time.Since(start).Seconds())
	}()
	srcServices, dstServices, err := listServices(ctx, b.src, b.dst, b.cfg.Include)
	if err != nil {
		return err
	}
	if skipped := slices.DeleteFunc(slices.Clone(srcServices), isValid); len(skipped) > 0 {
		b.log.Warn("source services not mirrored: their names are not valid service names",
			"count", len(skipped), "services", schema.List(skipped, schema.MaxDetail))
	}
	srcServices = slices.DeleteFunc(srcServices, isInvalid)
	var errs []error
	for _, service := range srcServices {
		onSource(service)
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(srcServices), dstServices...))))
	read := true // every service was read in both registries
	for _, service := range all {
		set, err := b.src.Resolve(ctx, service)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve source %s: %w", service, err))
			read = false
			continue
		}
		if read1, err := b.syncService(ctx, service, set); err != nil {
			errs = append(errs, err)
			read = read && read1
		}
	}
	if read && ctx.Err() == nil {
		b.fullDone.Store(true)
	}
	return joinErrors(errs)
}

// Converged reports whether this run has finished a full sync that read
// every service and has synced each of services at least once; a service it has not seen yet brings its next full sync
// forward. Until then a parity shortfall may be the bridge catching up —
// after a start, a restart or a leader change — rather than the fleet.
func (b *Bridge) Converged(services []string) bool {
	if !b.fullDone.Load() {
		return false
	}
	b.syncedMu.Lock()
	var unseen bool
	for _, s := range services {
		if !b.synced[s] {
			unseen = true
			break
		}
	}
	b.syncedMu.Unlock()
	if unseen {
		select {
		case b.resync <- struct{}{}:
		default:
		}
		return false
	}
	return true
}

// syncService brings the target's instances of service in line with src;
// read says it could read the target's (whatever the writes did).
func (b *Bridge) syncService(ctx context.Context, service string, src []registries.Instance) (read bool, err error) {
	start := time.Now()
	defer func() {
		b.metrics.syncs.WithLabelValues("service", result(err)).Inc()
		b.metrics.duration.WithLabelValues("service").Observe(time.Since(start).Seconds())
	}()
	dst, err := b.dst.Resolve(ctx, service)
	if err != nil {
		return false, fmt.Errorf("resolve target %s: %w", service, err)
	}
	// Read in both registries: whatever the writes below do, a parity of
	// this service now shows what the bridge did about it.
	defer func() {
		b.syncedMu.Lock()
		b.synced[service] = true
		b.syncedMu.Unlock()
	}()
	b.writtenMu.Lock()
	if b.durable {
		// Mirrors that outlive their writer (catalog entries) are adopted
		// as they are: a new leader's bridge does not write them again.
		for _, in := range dst {
			if _, ok := b.written[in.Key()]; !ok && MirroredBy(in, b.cfg.Name) {
				b.written[in.Key()] = in
			}
		}
	}
	b.forgetTakenOver(dst)
	plan := Reconcile(b.cfg.Name, b.cfg.SourceName, src, dst, b.written)
	b.writtenMu.Unlock()
	if plan.Empty() {
		return true, nil
	}
	b.log.Debug("sync", "service", service, "put", len(plan.Put), "delete", len(plan.Delete))
	return true, b.apply(ctx, plan)
}

// forgetTakenOver drops from what this run wrote the keys the target now
// holds from someone else and no mirror of this bridge: their owner took
// them over (see Forgetter). Called with writtenMu held.
func (b *Bridge) forgetTakenOver(dst []registries.Instance) {
	mine := map[registries.Key]bool{}
	for _, in := range dst {
		if MirroredBy(in, b.cfg.Name) {
			mine[in.Key()] = true
		}
	}
	f, forgets := b.dst.(Forgetter)
	for _, in := range dst {
		if _, wrote := b.written[in.Key()]; wrote && !mine[in.Key()] {
			delete(b.written, in.Key())
			if forgets {
				f.Forget(in.Service, in.ID)
			}
		}
	}
}

// apply writes a plan with up to Parallelism concurrent requests.
func (b *Bridge) apply(ctx context.Context, plan Plan) error {
	type op struct {
		put *registries.Instance
		del registries.Key
	}
	ops := make(chan op)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(b.cfg.Parallelism, len(plan.Put)+len(plan.Delete)) {
		wg.Go(func() {
			for o := range ops {
				var err error
				if o.put != nil {
					err = b.put(ctx, *o.put)
				} else {
					err = b.delete(ctx, o.del)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range plan.Put {
		ops <- op{put: &plan.Put[i]}
	}
	for _, k := range plan.Delete {
		ops <- op{del: k}
	}
	close(ops)
	wg.Wait()
	return joinErrors(errs)
}

func (b *Bridge) put(ctx context.Context, in registries.Instance) error {
	err := b.dst.Register(ctx, in)
	b.metrics.writes.WithLabelValues("put", result(err)).Inc()
	if err != nil {
		return fmt.Errorf("mirror %s/%s: %w", in.Service, in.ID, err)
	}
	b.writtenMu.Lock()
	b.written[in.Key()] = in
	b.writtenMu.Unlock()
	return nil
}

func (b *Bridge) delete(ctx context.Context, k registries.Key) error {
	err := b.dst.Deregister(ctx, k.Service, k.ID)
	if errors.Is(err, registries.ErrNotFound) {
		err = nil
	}
	b.metrics.writes.WithLabelValues("delete", result(err)).Inc()
	if err != nil {
		return fmt.Errorf("delete mirror %s/%s: %w", k.Service, k.ID, err)
	}
	b.writtenMu.Lock()
	delete(b.written, k)
	b.writtenMu.Unlock()
	return nil
}

// Parity reports this bridge's parity (see Parity), with Converged set
// (see Converged) for the services it compared.
func (b *Bridge) Parity(ctx context.Context) (Report, error) {
	r, err := parity(ctx, b.src, b.dst, b.cfg.Name, b.cfg.Include, b.cfg.Owned)
	if err == nil {
		services := make([]string, len(r.Services))
		for i, s := range r.Services {
			services[i] = s.Service
		}
		r.Converged = b.Converged(services)
		n := 0
		for _, s := range r.Services {
			if s.InSync() {
				n++
			}
		}
		b.metrics.inSync.Set(float64(n))
	}
	return r, err
}

// Resolver is what Parity reads from each registry.
type Resolver interface {
	Services(ctx context.Context) ([]string, error)
	Resolve(ctx context.Context, service string) ([]registries.Instance, error)
}

// Parity compares the instance sets of every service that src has, and of
// every service of dst that holds a mirror written by the bridge named name
// (a stale mirror is extra) — of those include selects (all when nil).
func Parity(ctx context.Context, src, dst Resolver, name string, include func(service string) bool) (Report, error) {
	return parity(ctx, src, dst, name, include, nil)
}

// parity is Parity, listing the source instances owned refuses as Unowned
// when owned is not nil.
func parity(ctx context.Context, src, dst Resolver, name string, include func(service string) bool, owned func(registries.Instance) bool) (Report, error) {
	services, dstServices, err := listServices(ctx, src, dst, include)
	if err != nil {
		return Report{}, err
	}
	services = slices.DeleteFunc(services, isInvalid)
	var r Report
	seen := map[string]bool{}
	for _, s := range services {
		seen[s] = true
	}
	for _, s := range dstServices {
		if seen[s] {
			continue
		}
		// A target-only service matters when it holds mirrors (stale ones).
		insts, err := dst.Resolve(ctx, s)
		if err != nil {
			return Report{}, fmt.Errorf("resolve target %s: %w", s, err)
		}
		if slices.ContainsFunc(insts, func(in registries.Instance) bool { return MirroredBy(in, name) }) {
			services = append(services, s)
		}
	}
	slices.Sort(services)
	for _, s := range services {
		a, z, err := resolveBoth(ctx, src, dst, s)
		if err != nil {
			return Report{}, err
		}
		p := Compare(s, a, z)
		if owned != nil {
			for _, in := range a {
				if !IsMirror(in) && !owned(in) {
					p.Unowned = append(p.Unowned, endpoint(in))
				}
			}
		}
		r.Services = append(r.Services, p)
	}
	return r, nil
}

// listServices lists the services of both registries that include selects
// (all when nil). Names that are not valid service names are dropped from
// the target's (nothing this bridge wrote can have one) and left to the
// caller for the source's.
func listServices(ctx context.Context, src, dst Resolver, include func(string) bool) (srcServices, dstServices []string, err error) {
	if srcServices, err = src.Services(ctx); err != nil {
		return nil, nil, fmt.Errorf("list source services: %w", err)
	}
	if dstServices, err = dst.Services(ctx); err != nil {
		return nil, nil, fmt.Errorf("list target services: %w", err)
	}
	if include != nil {
		excluded := func(s string) bool { return !include(s) }
		srcServices = slices.DeleteFunc(srcServices, excluded)
		dstServices = slices.DeleteFunc(dstServices, excluded)
	}
	return srcServices, slices.DeleteFunc(dstServices, isInvalid), nil
}

func isValid(service string) bool   { return registries.ValidateService(service) == nil }
func isInvalid(service string) bool { return !isValid(service) }

// ParityOf compares one service's instance sets.
func ParityOf(ctx context.Context, src, dst Resolver, service string) (ServiceParity, error) {
	a, z, err := resolveBoth(ctx, src, dst, service)
	if err != nil {
		return ServiceParity{}, err
	}
	return Compare(service, a, z), nil
}

// resolveBoth reads one service's instances in the source and the target.
func resolveBoth(ctx context.Context, src, dst Resolver, service string) (a, z []registries.Instance, err error) {
	if a, err = src.Resolve(ctx, service); err != nil {
		return nil, nil, fmt.Errorf("resolve source %s: %w", service, err)
	}
	if z, err = dst.Resolve(ctx, service); err != nil {
		return nil, nil, fmt.Errorf("resolve target %s: %w", service, err)
	}
	return a, z, nil
}

// Clean removes every mirror this bridge (by its Name) holds in the target,
// for when the bridge ends for good: catalog mirrors have no liveness of
// their own and would otherwise outlive it. Run must have returned. It
// returns how many mirrors it found; the failures to remove some are joined
// in the error.
func (b *Bridge) Clean(ctx context.Context) (int, error) {
	_, services, err := listServices(ctx, emptyResolver{}, b.dst, b.cfg.Include)
	if err != nil {
		return 0, err
	}
	var plan Plan
	for _, s := range services {
		insts, err := b.dst.Resolve(ctx, s)
		if err != nil {
			return 0, fmt.Errorf("resolve target %s: %w", s, err)
		}
		for _, in := range insts {
			if MirroredBy(in, b.cfg.Name) {
				plan.Delete = append(plan.Delete, in.Key())
			}
		}
	}
	if len(plan.Delete) == 0 {
		return 0, nil
	}
	return len(plan.Delete), b.apply(ctx, plan)
}

// emptyResolver is a registry with nothing in it.
type emptyResolver struct{}

func (emptyResolver) Services(context.Context) ([]string, error) { return nil, nil }
func (emptyResolver) Resolve(context.Context, string) ([]registries.Instance, error) {
	return nil, nil
}

// Unowned lists, per service of src that has any, the instances owned
// refuses (mirrors left out): what a rollout's plan does not move.
func Unowned(ctx context.Context, src Resolver, owned func(registries.Instance) bool) ([]ServiceParity, error) {
	r, err := parity(ctx, src, emptyResolver{}, "", nil, owned)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(r.Services, func(s ServiceParity) bool { return len(s.Unowned) == 0 }), nil
}
