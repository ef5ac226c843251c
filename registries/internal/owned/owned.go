// Package owned keeps the set of instances a registry client registered and
// must keep alive or restore after the registry lost them.
package owned

import (
	"sync"

	"github.com/regshift/regshift/registries"
)

// Set is safe for concurrent use; the zero value is empty.
type Set struct {
	mu sync.Mutex
	m  map[registries.Key]registries.Instance
}

// Put records inst (a copy), replacing the one with the same key.
func (s *Set) Put(inst registries.Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[registries.Key]registries.Instance{}
	}
	s.m[inst.Key()] = inst.Clone()
}

// Delete forgets the instance with key k.
func (s *Set) Delete(k registries.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// Drop forgets inst if the set still holds it with this very data (a
// later Put of the same key wins).
func (s *Set) Drop(inst registries.Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[inst.Key()]; ok && cur.Equal(inst) {
		delete(s.m, inst.Key())
	}
}

// Settle keeps inst after a Register that succeeded or failed with a
// retriable error (the client completes it once the registry is back), and
// drops it otherwise.
func (s *Set) Settle(inst registries.Instance, err error) {
	if err != nil && !registries.Retriable(err) {
		s.Drop(inst)
	}
}

// Holds reports whether inst, with this very data, is still recorded.
func (s *Set) Holds(inst registries.Instance) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[inst.Key()]
	return ok && cur.Equal(inst)
}

// List returns the recorded instances, in no particular order.
func (s *Set) List() []registries.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registries.Instance, 0, len(s.m))
	for _, in := range s.m {
		out = append(out, in)
	}
	return out
}

// Take returns the recorded instances and empties the set.
func (s *Set) Take() []registries.Instance {
	out := s.List()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.m)
	return out
}
