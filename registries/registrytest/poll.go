package registrytest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

// Patience bounds every wait in the suite for an eventually consistent
// registry to show a change (Consul's catalog sync, ZooKeeper's watches).
const Patience = 30 * time.Second

// Eventually calls check every 20ms until it returns nil, and fails the test
// with check's last error when within has passed.
func Eventually(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctx returns a context cancelled at the end of the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// ResolvesTo waits until r resolves service to exactly want (compared with
// Instance.Equal, order ignored).
func ResolvesTo(t testing.TB, r registries.Registry, service string, want []registries.Instance) {
	t.Helper()
	Eventually(t, Patience, "resolve "+service, func() error {
		got, err := r.Resolve(context.Background(), service)
		if err != nil {
			return err
		}
		return SameSet(got, want)
	})
}

// AwaitSet reads a watch until it delivers want, failing after Patience.
func AwaitSet(t testing.TB, ch <-chan []registries.Instance, what string, want []registries.Instance) {
	t.Helper()
	timeout := time.NewTimer(Patience)
	defer timeout.Stop()
	var last []registries.Instance
	for {
		select {
		case set, ok := <-ch:
			if !ok {
				t.Fatalf("%s: watch channel closed", what)
			}
			if SameSet(set, want) == nil {
				return
			}
			last = set
		case <-timeout.C:
			t.Fatalf("%s: watch did not deliver %v within %v; last set %v", what, want, Patience, last)
		}
	}
}

// SameSet returns nil when got and want hold equal instances, and otherwise
// an error naming the first difference.
func SameSet(got, want []registries.Instance) error {
	byKey := map[registries.Key]registries.Instance{}
	for _, g := range got {
		if _, dup := byKey[g.Key()]; dup {
			return fmt.Errorf("instance %v appears twice", g.Key())
		}
		byKey[g.Key()] = g
	}
	for _, w := range want {
		g, ok := byKey[w.Key()]
		if !ok {
			return fmt.Errorf("missing %v (have %d of %d)", w.Key(), len(got), len(want))
		}
		if !g.Equal(w) {
			return fmt.Errorf("%v is %+v, want %+v", w.Key(), g, w)
		}
		delete(byKey, w.Key())
	}
	for k := range byKey {
		return fmt.Errorf("unexpected %v (have %d, want %d)", k, len(got), len(want))
	}
	return nil
}

// PerTest returns a function that makes one value per test with mk and hands
// the same value to every later call for that test (e.g. one store or one
// base path that all clients of a test share).
func PerTest[V any](mk func(t *testing.T) V) func(t *testing.T) V {
	var mu sync.Mutex
	vals := map[*testing.T]V{}
	return func(t *testing.T) V {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := vals[t]; ok {
			return v
		}
		v := mk(t)
		vals[t] = v
		t.Cleanup(func() { mu.Lock(); delete(vals, t); mu.Unlock() })
		return v
	}
}

// Logger returns a logger that writes to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
