package registrytest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/regshift/regshift/registries"
)

// Recorder is a registry that remembers the keys registered through it,
// so that a Disruptable harness can make the registry lose exactly those
// registrations behind the client's back.
type Recorder struct {
	registries.Registry
	mu   sync.Mutex
	keys []registries.Key
}

// Register records the key and registers through the wrapped registry.
func (r *Recorder) Register(ctx context.Context, inst registries.Instance) error {
	r.mu.Lock()
	r.keys = append(r.keys, inst.Key())
	r.mu.Unlock()
	return r.Registry.Register(ctx, inst)
}

// Keys returns the keys registered so far, in order.
func (r *Recorder) Keys() []registries.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// SetHealth forwards to the wrapped registry, which must be a
// registries.HealthSetter (Harness.Health).
func (r *Recorder) SetHealth(ctx context.Context, service, id string, passing bool, output string) error {
	hs, ok := r.Registry.(registries.HealthSetter)
	if !ok {
		return errors.New("registrytest: the recorded registry is not a registries.HealthSetter")
	}
	return hs.SetHealth(ctx, service, id, passing, output)
}
