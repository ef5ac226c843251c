package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regshift/regshift/registries"
)

// Harness adapts one implementation to the suite.
type Harness struct {
	// New returns a client of the registry under test; clients made for the
	// same test share one registry (the same server and base path). The
	// harness closes it at the end of the test.
	New func(t *testing.T) registries.Registry
	// Disruptable returns a client and a function that makes the registry
	// lose every registration the way a fault does (session expiry, server
	// restart) and returns once the registry answers again. Nil for a
	// client that does not restore lost registrations itself (consul.Catalog
	// leaves that to its caller's reconcile): RestoredAfterDisruption does
	// not run.
	Disruptable func(t *testing.T) (registries.Registry, func())
	// Down returns a client of a registry that does not answer.
	Down func(t *testing.T) registries.Registry
	// Durable says that registrations outlive the client that wrote them
	// (consul.Catalog): WatchSeesChanges then ends by deregistering the
	// writer's last instance instead of closing the writer.
	Durable bool
	// Health says that the clients (New's, Disruptable's and Down's) are
	// registries.HealthSetters: the suite of that interface runs too.
	Health bool
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("RegisterResolveDeregister", func(t *testing.T) { t.Parallel(); testRegisterResolve(t, h) })
	t.Run("ReRegisterUpdates", func(t *testing.T) { t.Parallel(); testReRegister(t, h) })
	t.Run("WatchSeesChanges", func(t *testing.T) { t.Parallel(); testWatch(t, h) })
	t.Run("ThousandInstancesRoundTrip", func(t *testing.T) { t.Parallel(); testBulk(t, h) })
	t.Run("InvalidInputRefused", func(t *testing.T) { t.Parallel(); testInvalid(t, h) })
	if h.Disruptable != nil {
		t.Run("RestoredAfterDisruption", func(t *testing.T) { t.Parallel(); testDisruption(t, h) })
	}
	t.Run("ClosedClientRefuses", func(t *testing.T) { t.Parallel(); testClosed(t, h) })
	if h.Health {
		t.Run("Health", func(t *testing.T) { t.Parallel(); runHealth(t, h) })
	}
	// Last and alone: it checks that no goroutine outlives the client.
	t.Run("DownIsRetriableAndLeakFree", func(t *testing.T) { testDown(t, h) })
}

// Unique returns a service name no other test uses, so tests can share one
// server with each other and with other packages.
func Unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Inst returns a valid instance of service with id and port.
func Inst(service, id string, port int) registries.Instance {
	return registries.Instance{
		Service: service, ID: id, Address: "127.0.0.1", Port: port,
		Tags:     []string{"v1", "primary"},
		Metadata: map[string]string{"zone": "a", "owner": "team-" + id},
	}
}

func register(t testing.TB, r registries.Registry, insts ...registries.Instance) {
	t.Helper()
	for _, in := range insts {
		if err := r.Register(context.Background(), in); err != nil {
			t.Fatalf("register %s/%s: %v", in.Service, in.ID, err)
		}
	}
}

func testRegisterResolve(t *testing.T, h Harness) {
	r := h.New(t)
	ctx := Ctx(t)
	svc := Unique("orders")
	a, b, c := Inst(svc, "a", 8001), Inst(svc, "b", 8002), Inst(svc, "c", 8003)
	c.Tags, c.Metadata = nil, nil
	register(t, r, a, b, c)
	ResolvesTo(t, r, svc, []registries.Instance{a, b, c})

	observer := h.New(t)
	ResolvesTo(t, observer, svc, []registries.Instance{a, b, c})
	Eventually(t, Patience, "services lists "+svc, func() error {
		names, err := observer.Services(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(names, svc) {
			return fmt.Errorf("%s not in %d services", svc, len(names))
		}
		return nil
	})

	if err := r.Deregister(ctx, svc, "b"); err != nil {
		t.Fatalf("deregister b: %v", err)
	}
	ResolvesTo(t, observer, svc, []registries.Instance{a, c})
	if err := r.Deregister(ctx, svc, "b"); !errors.Is(err, registries.ErrNotFound) {
		t.Fatalf("deregister b twice: %v, want ErrNotFound", err)
	}
	none, err := r.Resolve(ctx, Unique("nobody"))
	if err != nil || len(none) != 0 {
		t.Fatalf("resolve of an unknown service: %v, %v; want no instances and no error", none, err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func testReRegister(t *testing.T, h Harness) {
	r := h.New(t)
	svc := Unique("billing")
	first := Inst(svc, "x", 9001)
	register(t, r, first)
	ResolvesTo(t, r, svc, []registries.Instance{first})

	second := first.Clone()
	second.Port, second.Address = 9002, "localhost"
	second.Tags = []string{"v2"}
	second.Metadata["zone"] = "b"
	register(t, r, second)
	ResolvesTo(t, r, svc, []registries.Instance{second})

	// Another client re-registering the same id takes it over, still once.
	other := h.New(t)
	third := second.Clone()
	third.Port = 9003
	register(t, other, third)
	ResolvesTo(t, r, svc, []registries.Instance{third})
}

func testWatch(t *testing.T, h Harness) {
	r := h.New(t)
	writer := h.New(t)
	svc := Unique("search")
	ctx, cancel := context.WithCancel(Ctx(t))
	ch, err := r.Watch(ctx, svc)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	await := func(what string, want []registries.Instance) {
		t.Helper()
		AwaitSet(t, ch, what, want)
	}
	await("initial empty set", nil)
	a := Inst(svc, "a", 7001)
	register(t, writer, a)
	await("registration", []registries.Instance{a})
	b := Inst(svc, "b", 7002)
	register(t, writer, b)
	await("second registration", []registries.Instance{a, b})
	a2 := a.Clone()
	a2.Metadata["zone"] = "c"
	register(t, writer, a2)
	await("update in place", []registries.Instance{a2, b})
	if err := writer.Deregister(ctx, svc, "a"); err != nil {
		t.Fatal(err)
	}
	await("deregistration", []registries.Instance{b})
	if h.Durable {
		if err := writer.Deregister(ctx, svc, "b"); err != nil {
			t.Fatal(err)
		}
		await("last deregistration", nil)
	} else {
		if err := writer.Close(); err != nil {
			t.Fatal(err)
		}
		await("writer closed", nil)
	}

	cancel()
	Eventually(t, Patience, "watch channel closes after cancel", func() error {
		select {
		case _, ok := <-ch:
			if !ok {
				return nil
			}
			return errors.New("still delivering")
		default:
			return errors.New("still open")
		}
	})
}

func testBulk(t *testing.T, h Harness) {
	const services, perService = 50, 20
	r := h.New(t)
	prefix := Unique("bulk")
	want := map[string][]registries.Instance{}
	var all []registries.Instance
	for s := range services {
		svc := fmt.Sprintf("%s-%02d", prefix, s)
		for i := range perService {
			in := Inst(svc, fmt.Sprintf("i%03d", i), 10000+s*perService+i)
			want[svc] = append(want[svc], in)
			all = append(all, in)
		}
	}
	Parallel(t, all, func(in registries.Instance) error { return r.Register(context.Background(), in) })

	observer := h.New(t)
	for svc, insts := range want {
		ResolvesTo(t, observer, svc, insts)
	}
	names, err := observer.Services(Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for svc := range want {
		if !slices.Contains(names, svc) {
			t.Fatalf("services lacks %s", svc)
		}
	}
	Parallel(t, all, func(in registries.Instance) error {
		return r.Deregister(context.Background(), in.Service, in.ID)
	})
	for svc := range want {
		ResolvesTo(t, observer, svc, nil)
	}
}

// Parallel runs fn for every instance on 16 goroutines and fails the test
// with the first error (registering thousands of instances, say).
func Parallel(t testing.TB, insts []registries.Instance, fn func(registries.Instance) error) {
	t.Helper()
	work := make(chan registries.Instance)
	errs := make(chan error, len(insts))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for in := range work {
				if err := fn(in); err != nil {
					errs <- fmt.Errorf("%s/%s: %w", in.Service, in.ID, err)
				}
			}
		})
	}
	for _, in := range insts {
		work <- in
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func testInvalid(t *testing.T, h Harness) {
	r := h.New(t)
	ctx := Ctx(t)
	svc := Unique("invalid")
	big := map[string]string{}
	for i := range registries.MaxMetadataKeys + 1 {
		big[fmt.Sprintf("k%d", i)] = "v"
	}
	mod := func(f func(*registries.Instance)) registries.Instance {
		in := Inst(svc, "ok", 8080)
		f(&in)
		return in
	}
	cases := []struct {
		name  string
		in    registries.Instance
		field string
	}{
		{"empty service", mod(func(i *registries.Instance) { i.Service = "" }), "service"},
		{"service with slash", mod(func(i *registries.Instance) { i.Service = svc + "/x" }), "service"},
		{"empty id", mod(func(i *registries.Instance) { i.ID = "" }), "id"},
		{"id with slash", mod(func(i *registries.Instance) { i.ID = "a/b" }), "id"},
		{"id dot-dot", mod(func(i *registries.Instance) { i.ID = ".." }), "id"},
		{"port zero", mod(func(i *registries.Instance) { i.Port = 0 }), "port"},
		{"port too high", mod(func(i *registries.Instance) { i.Port = 65536 }), "port"},
		{"negative port", mod(func(i *registries.Instance) { i.Port = -1 }), "port"},
		{"empty address", mod(func(i *registries.Instance) { i.Address = "" }), "address"},
		{"address with space", mod(func(i *registries.Instance) { i.Address = "a b" }), "address"},
		{"empty tag", mod(func(i *registries.Instance) { i.Tags = []string{""} }), "tags[0]"},
		{"oversize metadata value", mod(func(i *registries.Instance) {
			i.Metadata = map[string]string{"k": strings.Repeat("x", registries.MaxMetadataValLen+1)}
		}), `metadata["k"]`},
		{"too many metadata keys", mod(func(i *registries.Instance) { i.Metadata = big }), "metadata"},
		{"oversize metadata key", mod(func(i *registries.Instance) {
			i.Metadata = map[string]string{strings.Repeat("k", registries.MaxMetadataKeyLen+1): "v"}
		}), ""},
		{"metadata key with dot", mod(func(i *registries.Instance) { i.Metadata = map[string]string{"a.b": "v"} }), `metadata["a.b"]`},
		{"reserved metadata key", mod(func(i *registries.Instance) { i.Metadata = map[string]string{"consul-x": "v"} }), `metadata["consul-x"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Register(ctx, tc.in)
			var inv *registries.InvalidError
			if !errors.Is(err, registries.ErrInvalid) || !errors.As(err, &inv) {
				t.Fatalf("register: %v, want an *InvalidError wrapping ErrInvalid", err)
			}
			if tc.field != "" && inv.Field != tc.field {
				t.Fatalf("refused field %q, want %q (%v)", inv.Field, tc.field, err)
			}
			if registries.Retriable(err) {
				t.Fatalf("%v reported retriable", err)
			}
		})
	}
	if _, err := r.Resolve(ctx, ""); !errors.Is(err, registries.ErrInvalid) {
		t.Fatalf("resolve of an empty service: %v, want ErrInvalid", err)
	}
	if _, err := r.Watch(ctx, "a/b"); !errors.Is(err, registries.ErrInvalid) {
		t.Fatalf("watch of a/b: %v, want ErrInvalid", err)
	}
	if err := r.Deregister(ctx, svc, "a/b"); !errors.Is(err, registries.ErrInvalid) {
		t.Fatalf("deregister of id a/b: %v, want ErrInvalid", err)
	}
	// Nothing was written: a valid registration afterwards is the only one.
	ok := Inst(svc, "ok", 8080)
	register(t, r, ok)
	ResolvesTo(t, r, svc, []registries.Instance{ok})
	names, err := r.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "" || strings.HasPrefix(n, svc+"/") {
			t.Fatalf("an invalid service %q was written", n)
		}
	}
}

func testDisruption(t *testing.T, h Harness) {
	r, disrupt := h.Disruptable(t)
	svcA, svcB := Unique("restore-a"), Unique("restore-b")
	var wantA, wantB []registries.Instance
	for i := range 10 {
		wantA = append(wantA, Inst(svcA, fmt.Sprintf("a%d", i), 6000+i))
		wantB = append(wantB, Inst(svcB, fmt.Sprintf("b%d", i), 6100+i))
	}
	register(t, r, wantA...)
	register(t, r, wantB...)
	ResolvesTo(t, r, svcA, wantA)
	ResolvesTo(t, r, svcB, wantB)
	watched, err := r.Watch(Ctx(t), svcA)
	if err != nil {
		t.Fatal(err)
	}

	disrupt()

	ResolvesTo(t, r, svcA, wantA)
	ResolvesTo(t, r, svcB, wantB)
	// And the client keeps working after the disruption.
	late := Inst(svcA, "late", 6099)
	Eventually(t, Patience, "register after disruption", func() error {
		return r.Register(context.Background(), late)
	})
	ResolvesTo(t, r, svcA, append(slices.Clone(wantA), late))
	// A watch opened before the disruption still follows the service.
	AwaitSet(t, watched, "watch across the disruption", append(slices.Clone(wantA), late))
}

func testClosed(t *testing.T, h Harness) {
	r := h.New(t)
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx := Ctx(t)
	svc := Unique("closed")
	if err := r.Register(ctx, Inst(svc, "a", 1)); !errors.Is(err, registries.ErrClosed) {
		t.Fatalf("register after close: %v, want ErrClosed", err)
	}
	if _, err := r.Resolve(ctx, svc); !errors.Is(err, registries.ErrClosed) {
		t.Fatalf("resolve after close: %v, want ErrClosed", err)
	}
	if _, err := r.Watch(ctx, svc); !errors.Is(err, registries.ErrClosed) {
		t.Fatalf("watch after close: %v, want ErrClosed", err)
	}
}

func testDown(t *testing.T, h Harness) {
	leaks := goleak.IgnoreCurrent()
	r := h.Down(t)
	svc := Unique("down")
	ops := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"register", func(ctx context.Context) error { return r.Register(ctx, Inst(svc, "a", 80)) }},
		{"deregister", func(ctx context.Context) error { return r.Deregister(ctx, svc, "a") }},
		{"resolve", func(ctx context.Context) error { _, err := r.Resolve(ctx, svc); return err }},
		{"services", func(ctx context.Context) error { _, err := r.Services(ctx); return err }},
		{"ping", func(ctx context.Context) error { return r.Ping(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := op.do(ctx)
			if !errors.Is(err, registries.ErrUnavailable) || !registries.Retriable(err) {
				t.Fatalf("%s on a registry that is down: %v, want retriable ErrUnavailable", op.name, err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Watch(ctx, svc)
	if err != nil && !registries.Retriable(err) {
		t.Fatalf("watch on a registry that is down: %v, want a channel or a retriable error", err)
	}
	cancel()
	if ch != nil {
		Eventually(t, Patience, "watch of a down registry closes after cancel", func() error {
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						return nil
					}
				default:
					return errors.New("still open")
				}
			}
		})
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	goleak.VerifyNone(t, leaks)
}
