package nodeagent

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/regshift/regshift/nodeagent/agentapi"
)

// Hub holds the latest resolution of every consumed service and wakes
// long-polls when one changes. Index grows by one on every change of any
// service, like Consul's blocking-query index.
type Hub struct {
	mu      sync.Mutex
	index   uint64
	byName  map[string]agentapi.Resolution
	changed chan struct{} // closed and replaced on every change
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{byName: map[string]agentapi.Resolution{}, changed: make(chan struct{})}
}

// Set records a new resolution; an identical answer is not a change.
func (h *Hub) Set(r agentapi.Resolution) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.byName[r.Service]; ok && sameResolution(old, r) {
		return
	}
	h.index++
	r.Index = h.index
	h.byName[r.Service] = r
	close(h.changed)
	h.changed = make(chan struct{})
}

// Get returns the current resolution of a service and whether it is known.
func (h *Hub) Get(service string) (agentapi.Resolution, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.byName[service]
	return r, ok
}

// Wait returns the service's resolution once its index passes after, or the
// current one when ctx ends first.
func (h *Hub) Wait(ctx context.Context, service string, after uint64) (agentapi.Resolution, bool) {
	for {
		h.mu.Lock()
		r, ok := h.byName[service]
		ch := h.changed
		h.mu.Unlock()
		if ok && r.Index > after {
			return r, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return r, ok
		}
	}
}

// Services lists the known services, sorted.
func (h *Hub) Services() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.byName))
	for n := range h.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func sameResolution(a, b agentapi.Resolution) bool {
	if a.Via != b.Via || a.FellBack != b.FellBack || a.Error != b.Error || a.ParityNote != b.ParityNote || len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	for i := range a.Endpoints {
		x, y := a.Endpoints[i], b.Endpoints[i]
		if x.ID != y.ID || x.Address != y.Address || x.Port != y.Port || !slices.Equal(x.Tags, y.Tags) || !maps.Equal(x.Meta, y.Meta) {
			return false
		}
	}
	return true
}
