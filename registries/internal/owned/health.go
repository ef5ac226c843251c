package owned

import (
	"fmt"
	"strings"

	"github.com/regshift/regshift/registries"
)

// Health is the mark a client keeps on an instance it registered: passing
// (the zero value) or critical, with an output saying why.
type Health struct {
	Critical bool
	// Output is at most MaxOutput bytes of UTF-8.
	Output string
}

// MaxOutput bounds Health.Output in bytes (1 KiB): an app check's output
// that would grow with whatever the app answered is cut to this.
const MaxOutput = 1024

// NewHealth returns the mark SetHealth(passing, output) asks for, output
// cut to MaxOutput bytes on a rune boundary and ending in "…" when it was
// cut.
func NewHealth(passing bool, output string) Health {
	if len(output) > MaxOutput {
		const ell = "…"
		output = strings.ToValidUTF8(output[:MaxOutput-len(ell)], "") + ell
	}
	return Health{Critical: !passing, Output: output}
}

// MarkHeld is SetHealth's start in every adapter: it checks service and id
// as Register does, then marks the instance they name (Mark). ErrNotFound
// when the set holds no such instance.
func (s *Set) MarkHeld(service, id string, passing bool, output string) (registries.Key, error) {
	if err := registries.ValidateService(service); err != nil {
		return registries.Key{}, err
	}
	if err := registries.ValidateID(id); err != nil {
		return registries.Key{}, err
	}
	k := registries.Key{Service: service, ID: id}
	if _, ok := s.Mark(k, NewHealth(passing, output)); !ok {
		return k, NotHeld(k)
	}
	return k, nil
}

// NotHeld is the error of SetHealth of an instance the client does not
// hold: it wraps registries.ErrNotFound.
func NotHeld(k registries.Key) error {
	return fmt.Errorf("set health %s/%s: this client holds no such instance: %w", k.Service, k.ID, registries.ErrNotFound)
}
