// Package watch holds what every registry implementation's Watch shares:
// handing the latest instance set to a possibly slow reader, telling whether
// a set changed, and backing off between retries.
package watch

import (
	"context"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
)

// Offer puts set into ch (capacity 1), replacing an unread older set, so a
// slow reader only misses intermediate sets. ch must have one sender.
func Offer(ch chan []registries.Instance, set []registries.Instance) {
	for {
		select {
		case ch <- set:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// Same reports whether two sets sorted by id hold equal instances.
func Same(a, b []registries.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// Backoff doubles a retry delay from Min up to Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next delay, for a caller with a timer of its own.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.Min
	case b.cur < b.Max:
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur
}

// Wait sleeps for the next delay or until ctx ends; it reports whether the
// caller should go on (false: ctx ended).
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Reset starts the next Wait from Min again.
func (b *Backoff) Reset() { b.cur = 0 }

// Start runs loop on a goroutine of the client's lifetime g, with a
// context that ends with ctx or when the client closes, and closes the
// returned channel when loop returns. registries.ErrClosed after Close.
func Start(g *life.Group, ctx context.Context, loop func(ctx context.Context, out chan []registries.Instance)) (<-chan []registries.Instance, error) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.Context(), cancel)
	out := make(chan []registries.Instance, 1)
	err := g.Go(func() {
		defer stop()
		defer cancel()
		defer close(out)
		loop(ctx, out)
	})
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	return out, nil
}
