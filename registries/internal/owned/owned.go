// Package owned keeps the set of instances a registry client registered and
// must keep alive or restore after the registry lost them, each with the
// health mark the client keeps on it (registries.HealthSetter).
package owned

import (
	"sync"

	"github.com/regshift/regshift/registries"
)

// Set is safe for concurrent use; the zero value is empty.
type Set struct {
	mu  sync.Mutex
	m   map[registries.Key]Entry
	seq uint64 // the last Version handed out
}

// Entry is one recorded instance with its mark. Version changes whenever
// the instance or its mark does, and is never reused by the set: a writer
// that wrote an entry knows it wrote the latest when the set still holds
// that version afterwards (Current).
type Entry struct {
	Instance registries.Instance
	Health   Health
	Version  uint64
}

// Put records inst (a copy), replacing the one with the same key and
// keeping that one's mark, and returns the new entry.
func (s *Set) Put(inst registries.Instance) Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[registries.Key]Entry{}
	}
	s.seq++
	e := Entry{Instance: inst.Clone(), Health: s.m[inst.Key()].Health, Version: s.seq}
	s.m[inst.Key()] = e
	return e
}

// Mark sets the mark of the instance with key k and returns the new entry;
// false, changing nothing, when the set holds no such instance.
func (s *Set) Mark(k registries.Key, h Health) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok {
		return Entry{}, false
	}
	s.seq++
	e.Health, e.Version = h, s.seq
	s.m[k] = e
	return e, true
}

// Get returns the entry with key k.
func (s *Set) Get(k registries.Key) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	return e, ok
}

// Current reports whether the set still holds e unchanged (same version).
func (s *Set) Current(e Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[e.Instance.Key()]
	return ok && cur.Version == e.Version
}

// Delete forgets the instance with key k, and its mark.
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
	if cur, ok := s.m[inst.Key()]; ok && cur.Instance.Equal(inst) {
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
	return ok && cur.Instance.Equal(inst)
}

// List returns the recorded instances, in no particular order.
func (s *Set) List() []registries.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registries.Instance, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.Instance)
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
