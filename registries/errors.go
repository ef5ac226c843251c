package registries

import (
	"errors"
	"fmt"
)

// Conditions callers branch on. Every error a Registry returns for one of
// these wraps the sentinel, so errors.Is works through any wrapping.
var (
	// ErrNotFound: the instance (or service) does not exist.
	ErrNotFound = errors.New("registry: not found")
	// ErrInvalid: the input was refused before anything was written.
	ErrInvalid = errors.New("registry: invalid input")
	// ErrUnavailable: the registry could not be reached or answered with a
	// transient failure. Retrying later may succeed.
	ErrUnavailable = errors.New("registry: unavailable")
	// ErrSessionLost: the client's session ended (ZooKeeper expiry) while the
	// operation ran; the client restores its registrations on the next
	// session. Retrying may succeed.
	ErrSessionLost = errors.New("registry: session lost")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("registry: client closed")
)

// InvalidError says which field of which input was refused and why.
type InvalidError struct {
	Field  string // e.g. "port", "metadata[owner]"
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("registry: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Retriable reports whether an operation that failed with err may succeed
// when retried unchanged: the registry was unavailable or the session lost.
// This is the one place regshift decides retryability of registry errors.
func Retriable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSessionLost)
}
