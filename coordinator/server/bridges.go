package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/schema"
)

// bridgeWanted: the fleet may be mixed from preparing until it ended.
func bridgeWanted(p coordinator.Phase) bool { return !p.Ended() && p != schema.PhaseFinalized }

// openRegistry opens a client for an interface of a plan through the one
// registries opener. Consul keeps the bridge's mirrors on Close: they
// survive a coordinator restart.
func openRegistry(kind, addr string, log *slog.Logger) (registries.Registry, error) {
	return open.Open(registries.Kind(kind), open.Settings{Address: addr, KeepOnClose: true}, log)
}

// bridges supervises the running bridges, one per rollout that has one. Its
// lock guards the map only: opening clients and stopping a bridge happen
// outside it.
type bridges struct {
	open Opener
	log  *slog.Logger

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

func newBridges(open Opener, log *slog.Logger) *bridges {
	return &bridges{open: open, log: log, running: map[string]*runningBridge{}}
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
	cfg.Name, cfg.SourceName, cfg.ResyncInterval = "regshift-bridge", r.Plan.From.Name, 10*time.Second
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

// stop stops one rollout's bridge. Its mirrors stay in the target until
// their providers are gone from the source for good (finalize) or the fleet
// is back on the source (switch back) — then they are removed.
func (bs *bridges) stop(id string) {
	bs.mu.Lock()
	rb, ok := bs.running[id]
	delete(bs.running, id)
	bs.mu.Unlock()
	if !ok {
		return
	}
	rb.cancel()
	<-rb.done
	_ = rb.src.Close()
	_ = rb.dst.Close()
	bs.log.Info("bridge stopped", "rollout", id)
}

func (bs *bridges) stopAll() {
	for _, rb := range bs.list() {
		bs.stop(rb.id)
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
		for _, rb := range s.bridges.list() {
			rep := measure(ctx, rb, s.now())
			if err := o.report(ctx, rb.id, rep); err != nil && ctx.Err() == nil {
				s.log.Warn("registry report", "rollout", rb.id, "err", err)
			}
		}
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
