// Package life tracks a registry client's background goroutines and its
// closing: goroutines start only while the client is open, and Close
// cancels them and waits for them exactly once.
package life

import (
	"context"
	"sync"

	"github.com/regshift/regshift/registries"
)

// Group is a client's lifetime. The zero value is not usable; call New.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // orders Go's wg.Add before Close's wg.Wait
	closed bool
}

// New returns an open group.
func New() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Context is cancelled when Close begins.
func (g *Group) Context() context.Context { return g.ctx }

// Closed reports whether Close was called.
func (g *Group) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Go runs fn on a goroutine Close waits for; registries.ErrClosed after
// Close.
func (g *Group) Go(fn func()) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return registries.ErrClosed
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
	return nil
}

// Close cancels the context, runs beforeWait (if not nil), and waits for
// the goroutines. It reports false, doing nothing, when already closed.
func (g *Group) Close(beforeWait func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	if beforeWait != nil {
		beforeWait()
	}
	g.wg.Wait()
	return true
}
