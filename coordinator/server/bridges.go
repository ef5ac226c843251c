package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/schema"
)

// bridgeWanted: the fleet may be mixed from preparing until it ended; a
// finalized rollout keeps it for unowned instances until a second finalize.
func bridgeWanted(r *coordinator.Rollout) bool {
	return !r.Phase.Ended() && r.Phase != schema.PhaseFinalized || r.Phase == schema.PhaseFinalized && r.BridgeKept
}

// openRegistry opens a client for an interface of a plan through the one
// registries opener. In Consul the bridge writes its mirrors as catalog
// entries on a node of their own (open.Settings.Mirrors, consul.Catalog):
// no keepalive call per mirror, and they survive a coordinator restart or
// outage for the next leader's bridge to adopt (docs/registries.md).
// ZooKeeper mirrors are ephemeral nodes of one session.
func openRegistry(kind, addr string, log *slog.Logger) (registries.Registry, error) {
	return open.Open(registries.Kind(kind), open.Settings{Address: addr, KeepOnClose: true, Mirrors: true}, log)
}

// bridgeName is the name a rollout's bridge marks its mirrors with.
func bridgeName(rollout string) string { return "regshift-bridge/" + rollout }

// bridges supervises the running bridges, one per rollout that has one. Its
// lock guards the map only: opening clients and stopping a bridge happen
// outside it.
type bridges struct {
	open Opener
	log  *slog.Logger
	reg  prometheus.Registerer // each bridge's metrics, labelled with its rollout

	mu      sync.Mutex
	running map[string]*runningBridge
}

// runningBridge is one rollout's bridge and the registry clients it uses.
type runningBridge struct {
	id       string
	b        *bridge.Bridge
	src, dst registries.Registry
	cancel   context.CancelFunc
	done     chan struct{}
}

func newBridges(open Opener, reg prometheus.Registerer, log *slog.Logger) *bridges {
	return &bridges{open: open, reg: reg, log: log, running: map[string]*runningBridge{}}
}

// start mirrors the rollout's old registry into the new one, unless its
// bridge runs already.
func (bs *bridges) start(r *coordinator.Rollout) {
	bs.mu.Lock()
	_, ok := bs.running[r.ID]
	bs.mu.Unlock()
	if ok {
		return
	}
	log := bs.log.With("rollout", r.ID)
	src, err := bs.open(r.Plan.From.Kind, r.Plan.From.Address, log)
	if err != nil {
		log.Error("bridge source", "err", err)
		return
	}
	dst, err := bs.open(r.Plan.To.Kind, r.Plan.To.Address, log)
	if err != nil {
		_ = src.Close()
		log.Error("bridge target", "err", err)
		return
	}
	cfg := bridge.DefaultConfig()
	// The name marks this rollout's mirrors: what its bridge may delete and
	// clean, and what a new leader's bridge adopts. One name per rollout, so
	// two rollouts (or two fleets) writing into one registry never remove
	// each other's mirrors.
	cfg.Name, cfg.SourceName, cfg.ResyncInterval = bridgeName(r.ID), r.Plan.From.Name, 10*time.Second
	// An instance is owned when a node agent of this plan registered it
	// (registries.MetaNode). The set is the plan's node ids: at most
	// schema.PlanMaxNodes strings, held while the bridge runs.
	nodes := make(map[string]bool, len(r.Nodes))
	for _, n := range r.Nodes {
		nodes[n.ID] = true
	}
	cfg.Owned = func(in registries.Instance) bool { return nodes[in.Metadata[registries.MetaNode]] }
	// One series per rollout (a bridge started again for it, by this
	// leader or after a restart of its bridge, counts on in the same).
	cfg.Metrics = prometheus.WrapRegistererWith(prometheus.Labels{"rollout": r.ID}, bs.reg)
	b, err := bridge.New(src, dst, cfg, log)
	if err != nil {
		_ = src.Close()
		_ = dst.Close()
		log.Error("bridge", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBridge{id: r.ID, b: b, src: src, dst: dst, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		_ = b.Run(ctx)
	}()
	bs.mu.Lock()
	bs.running[r.ID] = rb
	bs.mu.Unlock()
	log.Info("bridge started", "from", r.Plan.From.Address, "to", r.Plan.To.Address)
}

// stop stops one rollout's bridge. clean says it ends for good (the
// rollout finalized, switched back or failed, or its kept bridge was
// ended): its mirrors are then removed from the target, as nothing else
// would (catalog mirrors have no liveness of their own). A leader that
// stops leading does not clean: the next leader's bridge adopts them.
func (bs *bridges) stop(id string, clean bool) {
	bs.mu.Lock()
	rb, ok := bs.running[id]
	delete(bs.running, id)
	bs.mu.Unlock()
	if !ok {
		return
	}
	rb.cancel()
	<-rb.done
	if clean {
		ctx, cancel := context.WithTimeout(context.Background(), cleanTimeout)
		n, err := rb.b.Clean(ctx)
		cancel()
		if err != nil {
			bs.log.Error("bridge mirrors not all removed; remove the rest by hand (docs/operating.md)", "rollout", id, "mirrors", n, "err", err)
		} else {
			bs.log.Info("bridge mirrors removed", "rollout", id, "mirrors", n)
		}
	}
	_ = rb.src.Close()
	_ = rb.dst.Close()
	bs.log.Info("bridge stopped", "rollout", id, "cleaned", clean)
}

// cleanTimeout bounds the removal of an ended bridge's mirrors (the owner
// waits for it): 10,000 mirrors take a few seconds on a local Consul.
const cleanTimeout = time.Minute

func (bs *bridges) stopAll() {
	for _, rb := range bs.list() {
		bs.stop(rb.id, false)
	}
}

func (bs *bridges) list() []*runningBridge {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := make([]*runningBridge, 0, len(bs.running))
	for _, rb := range bs.running {
		out = append(out, rb)
	}
	return out
}

// registryLoop measures, for every rollout that has a bridge, whether the
// new registry answers and the parity of its instance sets with the old
// one, and hands the report to the owner.
func (s *Server) registryLoop(ctx context.Context, o *owner) {
	t := time.NewTicker(s.cfg.RegistryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		running, unowned := s.bridges.list(), 0
		for _, rb := range running {
			rep := measure(ctx, rb, s.now())
			unowned += rep.Unowned
			if err := o.report(ctx, rb.id, rep); err != nil && ctx.Err() == nil {
				s.log.Warn("registry report", "rollout", rb.id, "err", err)
			}
		}
		s.m.bridges.Set(float64(len(running)))
		s.m.unowned.Set(float64(unowned))
	}
}

// maxRegistryDetail bounds a registry report's detail however many
// instances are missing. The core quotes it in a gate decision after a
// prefix of its own ("wave 1: parity failed; resume re-evaluates …",
// under 128 bytes), and that decision must stay within schema.MaxDetail.
const maxRegistryDetail = schema.MaxDetail - 128

// measure pings the new registry and computes the parity: the share of the
// old registry's instances the new one also offers.
func measure(ctx context.Context, rb *runningBridge, now time.Time) coordinator.RegistryReport {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep := coordinator.RegistryReport{At: now, BridgeRunning: true}
	select {
	case <-rb.done:
		rep.BridgeRunning = false
	default:
	}
	if err := rb.dst.Ping(ctx); err != nil {
		rep.Detail = schema.Truncate("new registry: "+err.Error(), maxRegistryDetail)
		return rep
	}
	rep.Reachable, rep.Healthy = true, true
	p, err := rb.b.Parity(ctx)
	if err != nil {
		rep.Detail = schema.Truncate("parity: "+err.Error(), maxRegistryDetail)
		return rep
	}
	same, total := 0, 0
	var missing []string
	for _, s := range p.Services {
		same += len(s.Same)
		total += len(s.Same) + len(s.Missing)
		for _, m := range s.Missing {
			missing = append(missing, s.Service+"/"+m.ID)
		}
	}
	rep.Parity = 1
	if total > 0 {
		rep.Parity = float64(same) / float64(total)
	}
	rep.BridgeConverged = p.Converged
	rep.Unowned, rep.UnownedDetail = unowned(p)
	prefix := ""
	if !p.Converged {
		prefix = "bridge still on its first sync of some services; "
	}
	if len(missing) > 0 {
		// The count first: the list keeps as many as fit and counts the rest.
		head := fmt.Sprintf("%s%d of %d missing in the new registry: ", prefix, len(missing), total)
		rep.Detail = head + schema.List(missing, maxRegistryDetail-len(head))
	} else if prefix != "" {
		rep.Detail = strings.TrimSuffix(prefix, "; ")
	}
	return rep
}

// unowned counts the parity's unowned instances and names them per service
// ("orders: o-7, o-9; billing: b-1"), within schema.MaxDetail.
func unowned(p bridge.Report) (int, string) {
	n := 0
	var parts []string
	for _, s := range p.Services {
		if len(s.Unowned) == 0 {
			continue
		}
		n += len(s.Unowned)
		ids := make([]string, len(s.Unowned))
		for i, e := range s.Unowned {
			ids[i] = e.ID
		}
		parts = append(parts, s.Service+": "+schema.List(ids, 256))
	}
	return n, schema.ListFunc(len(parts), func(i int) string { return parts[i] }, "; ", schema.MaxDetail)
}
