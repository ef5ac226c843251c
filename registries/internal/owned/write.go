package owned

import (
	"context"

	"github.com/regshift/regshift/registries"
)

// Write writes one entry, instance and mark, to a client's registry.
type Write func(ctx context.Context, e Entry) error

// Register is Register of every adapter that keeps its registrations: it
// records inst (a copy) and writes it, and again while the set's entry
// changed meanwhile (a concurrent Register or SetHealth of the same
// instance), so the registry ends with the latest; then it keeps inst
// after a success or a retriable error (the client's keepalive completes
// it) and drops it after any other error (Settle).
func (s *Set) Register(ctx context.Context, inst registries.Instance, write Write) error {
	inst = inst.Clone()
	e := s.Put(inst)
	err := s.writeLatest(ctx, e, write)
	s.Settle(inst, err)
	return err
}

func (s *Set) writeLatest(ctx context.Context, e Entry, write Write) error {
	for {
		if err := write(ctx, e); err != nil {
			return err
		}
		next, ok := s.Get(e.Instance.Key())
		if !ok || next.Version == e.Version {
			return nil
		}
		e = next
	}
}

// Apply writes the entry with key k as the set holds it, and again while
// it changed meanwhile, so a write that read the entry before a change
// (a keepalive before a SetHealth) never leaves its stale data behind.
// held is false, and nothing is written, when the set holds no k.
func (s *Set) Apply(ctx context.Context, k registries.Key, write Write) (held bool, err error) {
	for {
		e, ok := s.Get(k)
		if !ok {
			return false, nil
		}
		if err := write(ctx, e); err != nil {
			return true, err
		}
		if s.Current(e) {
			return true, nil
		}
	}
}

// SetHealth is SetHealth of every adapter that writes its marks: it marks
// the instance (MarkHeld) and applies the mark with write (Apply).
// ErrNotFound when the set does not hold the instance, also when it was
// deregistered meanwhile; write's error otherwise, with the mark kept for
// the client's keepalive to apply.
func (s *Set) SetHealth(ctx context.Context, service, id string, passing bool, output string, write Write) error {
	k, err := s.MarkHeld(service, id, passing, output)
	if err != nil {
		return err
	}
	held, err := s.Apply(ctx, k, write)
	if !held {
		return NotHeld(k) // deregistered meanwhile
	}
	return err
}
