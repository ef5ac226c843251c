package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/zookeeper"
	"github.com/regshift/regshift/schema"
)

// runningBridge is one rollout's bridge and the registry clients it uses.
type runningBridge struct {
	b        *bridge.Bridge
	src, dst registries.Registry
	cancel   context.CancelFunc
	done     chan struct{}
}

// bridgeWanted: the fleet may be mixed from preparing until it ended.
func bridgeWanted(p Phase) bool { return !p.Ended() && p != PhaseFinalized }

// openRegistry opens a client for an interface of a plan. A ZooKeeper
// address may end in the Curator base path: "zk1:2181,zk2:2181/services".
func openRegistry(kind, addr string, log *slog.Logger) (registries.Registry, error) {
	switch kind {
	case "zookeeper":
		servers, base, _ := strings.Cut(addr, "/")
		cfg := zookeeper.DefaultConfig(strings.Split(servers, ",")...)
		if base != "" {
			cfg.BasePath = "/" + base
		}
		return zookeeper.New(cfg, log)
	case "consul":
		cfg := consul.DefaultConfig()
		cfg.Address = addr
		cfg.DeregisterOnClose = false // mirrors survive a coordinator restart
		return consul.New(cfg, log)
	}
	return nil, fmt.Errorf("unknown interface kind %q", kind)
}

// startBridge mirrors the rollout's old registry into the new one. Call
// with rt.mu held.
func (rt *Runtime) startBridge(r *Rollout) {
	if _, ok := rt.bridges[r.ID]; ok {
		return
	}
	log := rt.log.With("rollout", r.ID)
	src, err := rt.newOpen(r.Plan.From.Kind, r.Plan.From.Address, log)
	if err != nil {
		log.Error("bridge source", "err", err)
		return
	}
	dst, err := rt.newOpen(r.Plan.To.Kind, r.Plan.To.Address, log)
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
	rb := &runningBridge{b: b, src: src, dst: dst, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		_ = b.Run(ctx)
	}()
	rt.bridges[r.ID] = rb
	log.Info("bridge started", "from", r.Plan.From.Address, "to", r.Plan.To.Address)
}

// stopBridge stops one rollout's bridge. Its mirrors stay in the target
// until their providers are gone from the source for good (finalize) or the
// fleet is back on the source (switch back) — then they are removed.
func (rt *Runtime) stopBridge(id string) {
	rb, ok := rt.bridges[id]
	if !ok {
		return
	}
	delete(rt.bridges, id)
	rb.cancel()
	<-rb.done
	_ = rb.src.Close()
	_ = rb.dst.Close()
	rt.log.Info("bridge stopped", "rollout", id)
}

func (rt *Runtime) stopBridges() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for id := range rt.bridges {
		rt.stopBridge(id)
	}
}

// registryLoop measures, for every rollout that has a bridge, whether the
// new registry answers and the parity of its instance sets with the old
// one, and folds the report in.
func (rt *Runtime) registryLoop(ctx context.Context) {
	t := time.NewTicker(rt.cfg.RegistryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rt.mu.Lock()
		running := map[string]*runningBridge{}
		for id, rb := range rt.bridges {
			running[id] = rb
		}
		rt.mu.Unlock()
		for id, rb := range running {
			rep := measure(ctx, rb)
			rt.mu.Lock()
			if r, ok := rt.rollouts[id]; ok && !r.Phase.Ended() {
				if err := rt.fold(ctx, r, RegistryIn{Now: rep.At, Report: rep}); err != nil && ctx.Err() == nil {
					rt.log.Warn("registry report", "rollout", id, "err", err)
				}
			}
			rt.mu.Unlock()
		}
	}
}

// measure pings the new registry and computes the parity: the share of the
// old registry's instances the new one also offers.
func measure(ctx context.Context, rb *runningBridge) RegistryReport {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep := RegistryReport{At: time.Now().UTC(), BridgeRunning: true}
	select {
	case <-rb.done:
		rep.BridgeRunning = false
	default:
	}
	if err := rb.dst.Ping(ctx); err != nil {
		rep.Detail = "new registry: " + err.Error()
		return rep
	}
	rep.Reachable, rep.Healthy = true, true
	p, err := rb.b.Parity(ctx)
	if err != nil {
		rep.Detail = "parity: " + err.Error()
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
	if len(missing) > 0 {
		rep.Detail = fmt.Sprintf("missing in the new registry: %s", strings.Join(missing, ", "))
	}
	return rep
}

var _ = schema.TypeRolloutRecord
