package registrytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

// runHealth runs the suite of registries.HealthSetter.
func runHealth(t *testing.T, h Harness) {
	t.Run("CriticalLeftOut", func(t *testing.T) { t.Parallel(); testCriticalLeftOut(t, h) })
	t.Run("NotHeldIsNotFound", func(t *testing.T) { t.Parallel(); testHealthRefused(t, h) })
	t.Run("DeregisterForgetsTheMark", func(t *testing.T) { t.Parallel(); testDeregisterForgets(t, h) })
	if h.Disruptable != nil {
		t.Run("CriticalAfterDisruption", func(t *testing.T) { t.Parallel(); testCriticalAfterDisruption(t, h) })
	}
	t.Run("DownIsRetriable", func(t *testing.T) { t.Parallel(); testHealthDown(t, h) })
}

// healthRegistry is a registry that carries its instances' health.
type healthRegistry interface {
	registries.Registry
	registries.HealthSetter
}

// withHealth returns r as a healthRegistry, failing the test when it is not
// one.
func withHealth(t testing.TB, r registries.Registry) healthRegistry {
	t.Helper()
	hr, ok := r.(healthRegistry)
	if !ok {
		t.Fatalf("%T is not a registries.HealthSetter (Harness.Health)", r)
	}
	return hr
}

func setHealth(t testing.TB, r registries.HealthSetter, in registries.Instance, passing bool, output string) {
	t.Helper()
	if err := r.SetHealth(context.Background(), in.Service, in.ID, passing, output); err != nil {
		t.Fatalf("set health of %s/%s passing=%v: %v", in.Service, in.ID, passing, err)
	}
}

// testCriticalLeftOut: Resolve and Watch, of this client and of another,
// leave out an instance marked critical; the mark holds across a
// re-registration, and passing brings the instance back.
func testCriticalLeftOut(t *testing.T, h Harness) {
	r := withHealth(t, h.New(t))
	observer := h.New(t)
	svc := Unique("health")
	a, b := Inst(svc, "a", 8001), Inst(svc, "b", 8002)
	register(t, r, a, b)
	ch, err := observer.Watch(Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	AwaitSet(t, ch, "both registered", []registries.Instance{a, b})

	setHealth(t, r, a, false, "connection refused")
	ResolvesTo(t, r, svc, []registries.Instance{b})
	ResolvesTo(t, observer, svc, []registries.Instance{b})
	AwaitSet(t, ch, "a marked critical", []registries.Instance{b})

	a2 := a.Clone()
	a2.Port = 8011
	register(t, r, a2)
	b2 := b.Clone()
	b2.Port = 8012
	register(t, r, b2) // a later change the watch must see with a still left out
	AwaitSet(t, ch, "a re-registered while critical", []registries.Instance{b2})
	ResolvesTo(t, r, svc, []registries.Instance{b2})

	setHealth(t, r, a2, true, "")
	ResolvesTo(t, observer, svc, []registries.Instance{a2, b2})
	AwaitSet(t, ch, "a marked passing", []registries.Instance{a2, b2})
}

// testHealthRefused: SetHealth of an instance this client does not hold
// is ErrNotFound (never registered, another client's, deregistered); bad
// input is ErrInvalid; a closed client refuses.
func testHealthRefused(t *testing.T, h Harness) {
	r := withHealth(t, h.New(t))
	other := h.New(t)
	ctx := Ctx(t)
	svc := Unique("health-refused")
	mine, theirs := Inst(svc, "mine", 8001), Inst(svc, "theirs", 8002)
	register(t, r, mine)
	register(t, other, theirs)
	if err := r.Deregister(ctx, svc, "mine"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		service, id string
		want        error
	}{
		{"never registered", svc, "nobody", registries.ErrNotFound},
		{"another client's", svc, "theirs", registries.ErrNotFound},
		{"deregistered", svc, "mine", registries.ErrNotFound},
		{"invalid service", "bad/service", "a", registries.ErrInvalid},
		{"invalid id", svc, "bad id", registries.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.SetHealth(ctx, tc.service, tc.id, false, "x"); !errors.Is(err, tc.want) {
				t.Fatalf("SetHealth: %v, want %v", err, tc.want)
			}
		})
	}
	ResolvesTo(t, other, svc, []registries.Instance{theirs}) // the refused marks changed nothing
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.SetHealth(ctx, svc, "mine", false, "x"); !errors.Is(err, registries.ErrClosed) {
		t.Fatalf("SetHealth after close: %v, want ErrClosed", err)
	}
}

// testDeregisterForgets: an instance registered again after Deregister
// starts passing.
func testDeregisterForgets(t *testing.T, h Harness) {
	r := withHealth(t, h.New(t))
	in := Inst(Unique("health-forget"), "a", 8001)
	register(t, r, in)
	setHealth(t, r, in, false, "refused")
	ResolvesTo(t, r, in.Service, nil)
	if err := r.Deregister(context.Background(), in.Service, in.ID); err != nil {
		t.Fatal(err)
	}
	register(t, r, in)
	ResolvesTo(t, r, in.Service, []registries.Instance{in})
}

// testCriticalAfterDisruption: an instance marked critical that the
// registry lost is restored still critical.
func testCriticalAfterDisruption(t *testing.T, h Harness) {
	dr, disrupt := h.Disruptable(t)
	r := withHealth(t, dr)
	svc := Unique("health-restore")
	a, b := Inst(svc, "a", 8001), Inst(svc, "b", 8002)
	register(t, r, a, b)
	setHealth(t, r, a, false, "still failing")
	ResolvesTo(t, r, svc, []registries.Instance{b})

	disrupt()

	ResolvesTo(t, r, svc, []registries.Instance{b})
	setHealth(t, r, a, true, "") // a is still held ...
	ResolvesTo(t, r, svc, []registries.Instance{a, b})
}

// testHealthDown: SetHealth of an instance whose registration waits for
// the registry to answer is a retriable error, bounded by the context.
func testHealthDown(t *testing.T, h Harness) {
	r := withHealth(t, h.Down(t))
	in := Inst(Unique("health-down"), "a", 80)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Register(ctx, in); !registries.Retriable(err) {
		t.Fatalf("register on a registry that is down: %v, want a retriable error", err)
	}
	if err := r.SetHealth(ctx, in.Service, in.ID, false, "x"); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("SetHealth on a registry that is down: %v, want ErrUnavailable", err)
	}
}
