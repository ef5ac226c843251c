package consul

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
)

// fakeAgent is the agent API over a map of checks. before, when set, runs
// once ahead of the next check update, as a request that overtakes it.
type fakeAgent struct {
	mu         sync.Mutex
	checks     map[string]fakeCheck
	registered []string // the status of every check registration, in order
	before     func()
}

type fakeCheck struct{ status, output string }

func (f *fakeAgent) ServiceRegisterOpts(reg *api.AgentServiceRegistration, _ api.ServiceRegisterOpts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks[reg.Check.CheckID] = fakeCheck{status: reg.Check.Status}
	f.registered = append(f.registered, reg.Check.Status)
	return nil
}

func (f *fakeAgent) ServiceDeregisterOpts(serviceID string, _ *api.QueryOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.checks, "regshift:"+serviceID)
	return nil
}

func (f *fakeAgent) UpdateTTLOpts(checkID, output, status string, _ *api.QueryOptions) error {
	f.mu.Lock()
	before := f.before
	f.before = nil
	f.mu.Unlock()
	if before != nil {
		before()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.checks[checkID]; !ok {
		return api.StatusError{Code: http.StatusNotFound, Body: "Unknown check ID"}
	}
	f.checks[checkID] = fakeCheck{status: status, output: output}
	return nil
}

func (f *fakeAgent) check(id string) (fakeCheck, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks[id], append([]string(nil), f.registered...)
}

// fakeClient is a Client on a fakeAgent, without its keepalive (the test
// runs refresh itself), that registered orders/a.
func fakeClient(t *testing.T) (*Client, *fakeAgent, registries.Instance) {
	c, _, err := newClient(DefaultConfig(), registrytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAgent{checks: map[string]fakeCheck{}}
	c.agent = f
	t.Cleanup(func() { _ = c.Close() })
	in := registrytest.Inst("orders", "a", 80)
	if err := c.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return c, f, in
}

// TestKeepaliveNeverUndoesAConcurrentMark: a keepalive that read the
// instance passing, and whose update lands after a SetHealth(critical)'s,
// writes the check again: it ends critical.
func TestKeepaliveNeverUndoesAConcurrentMark(t *testing.T) {
	c, f, in := fakeClient(t)
	ctx := context.Background()
	f.before = func() {
		if err := c.SetHealth(ctx, "orders", "a", false, "refused"); err != nil {
			t.Error(err)
		}
	}
	c.refresh(ctx, in.Key())
	if got, _ := f.check(checkID("orders", "a")); got != (fakeCheck{api.HealthCritical, "refused"}) {
		t.Fatalf("check after the race: %+v, want critical refused", got)
	}
}

// TestLostCheckRegisteredWithItsMark: a check the agent lost is registered
// again in the marked status, then given its output.
func TestLostCheckRegisteredWithItsMark(t *testing.T) {
	c, f, in := fakeClient(t)
	ctx := context.Background()
	if err := c.SetHealth(ctx, "orders", "a", false, "refused"); err != nil {
		t.Fatal(err)
	}
	_ = f.ServiceDeregisterOpts(serviceID("orders", "a"), nil) // reaped
	c.refresh(ctx, in.Key())
	got, registered := f.check(checkID("orders", "a"))
	if got != (fakeCheck{api.HealthCritical, "refused"}) {
		t.Fatalf("check after re-registration: %+v, want critical refused", got)
	}
	if want := []string{api.HealthPassing, api.HealthCritical}; !slices.Equal(registered, want) {
		t.Fatalf("registrations in status %v, want %v", registered, want)
	}
	if err := c.Deregister(ctx, "orders", "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.owned.Get(registries.Key{Service: "orders", ID: "a"}); ok {
		t.Fatal("Deregister left the mark held")
	}
}
