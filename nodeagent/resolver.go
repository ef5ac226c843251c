package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/registries"
)

// resolver keeps the Hub's answers current for every consumed service: it
// watches each service through the primary interface and the fallback, and
// publishes the primary's answer unless it is empty or has fewer than the
// parity threshold of the fallback's instances, in which case it publishes
// the fallback's.
type resolver struct {
	hub       *Hub
	services  []string
	threshold float64
	log       *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	order  [2]string
}

func newResolver(hub *Hub, services []string, threshold float64, log *slog.Logger) *resolver {
	return &resolver{hub: hub, services: services, threshold: threshold, log: log}
}

// route makes resolves go through primary, then fallback (nil for none).
// Routing to the same pair again changes nothing.
func (r *resolver) route(primaryName string, primary registries.Registry, fallbackName string, fallback registries.Registry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil && r.order == [2]string{primaryName, fallbackName} {
		return
	}
	r.stopLocked()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.order = cancel, [2]string{primaryName, fallbackName}
	for _, svc := range r.services {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.follow(ctx, svc, primaryName, primary, fallbackName, fallback)
		}()
	}
}

func (r *resolver) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *resolver) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
		r.cancel = nil
	}
}

// follow merges the two watches of one service until ctx ends.
func (r *resolver) follow(ctx context.Context, svc, pName string, p registries.Registry, fName string, f registries.Registry) {
	pc, err := p.Watch(ctx, svc)
	if err != nil {
		r.hub.Set(agentapi.Resolution{Service: svc, Via: pName, Error: err.Error()})
		r.log.Warn("watch failed", "service", svc, "interface", pName, "err", err)
		return
	}
	var fc <-chan []registries.Instance
	if f != nil {
		if fc, err = f.Watch(ctx, svc); err != nil {
			r.log.Warn("fallback watch failed", "service", svc, "interface", fName, "err", err)
		}
	}
	var pSet, fSet []registries.Instance
	pSeen, fSeen := false, fc == nil
	for pc != nil || fc != nil {
		select {
		case set, ok := <-pc:
			if !ok {
				pc = nil
				continue
			}
			pSet, pSeen = set, true
		case set, ok := <-fc:
			if !ok {
				fc = nil
				continue
			}
			fSet, fSeen = set, true
		case <-ctx.Done():
			return
		}
		if pSeen && fSeen {
			r.hub.Set(choose(svc, pName, pSet, fName, fSet, f != nil, r.threshold))
		}
	}
}

// choose picks the answer the host's apps get.
func choose(svc, pName string, pSet []registries.Instance, fName string, fSet []registries.Instance, hasFallback bool, threshold float64) agentapi.Resolution {
	res := agentapi.Resolution{Service: svc, Via: pName, Endpoints: endpoints(pSet)}
	if !hasFallback || len(fSet) == 0 {
		return res
	}
	if len(pSet) == 0 {
		return agentapi.Resolution{Service: svc, Via: fName, FellBack: true, Endpoints: endpoints(fSet),
			ParityNote: fmt.Sprintf("%s has no instance of %s", pName, svc)}
	}
	if p := Parity(pSet, fSet); p < threshold {
		return agentapi.Resolution{Service: svc, Via: fName, FellBack: true, Endpoints: endpoints(fSet),
			ParityNote: fmt.Sprintf("%s has %.2f of %s's instances of %s, below %.2f", pName, p, fName, svc, threshold)}
	}
	return res
}

// Parity is the fraction of the reference set's instances (by service and
// id) that the candidate set also holds: 1 when it holds all of them.
func Parity(candidate, reference []registries.Instance) float64 {
	if len(reference) == 0 {
		return 1
	}
	have := make(map[registries.Key]bool, len(candidate))
	for _, in := range candidate {
		have[in.Key()] = true
	}
	n := 0
	for _, in := range reference {
		if have[in.Key()] {
			n++
		}
	}
	return float64(n) / float64(len(reference))
}

// endpoints is what the apps get of a set: one endpoint per instance id.
// A registry can hold an instance twice for a while — the provider's own
// registration, and the bridge's mirror of it from the old registry until
// the bridge's next sync of that service notices the owner and deletes it
// (Consul keeps both: an agent service and a catalog entry) — and the
// owner's own registration wins.
func endpoints(set []registries.Instance) []agentapi.Endpoint {
	out := make([]agentapi.Endpoint, 0, len(set))
	at := make(map[string]int, len(set))
	for _, in := range set {
		e := agentapi.Endpoint{ID: in.ID, Address: in.Address, Port: in.Port, Tags: in.Tags, Meta: in.Metadata}
		i, seen := at[in.ID]
		switch {
		case !seen:
			at[in.ID] = len(out)
			out = append(out, e)
		case isMirror(out[i].Meta) && !isMirror(in.Metadata):
			out[i] = e
		}
	}
	return out
}

func isMirror(meta map[string]string) bool {
	_, ok := meta[registries.MetaMirrored]
	return ok
}
