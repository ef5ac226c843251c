package eureka_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/eureka"
	"github.com/regshift/regshift/registries/registrytest"
)

// TestAppNameCase: Eureka upper-cases app names; a service registered as
// "Orders" resolves, watches and lists as "Orders", not as another case.
// Another Eureka client's instance of app ORDERS belongs to every case of
// the name and lists lower-cased, as Spring Cloud names it.
func TestAppNameCase(t *testing.T) {
	addr := servers.RequireEureka(t)
	c := newClient(t, testConfig(addr))
	raw := rawServer{addr: addr}
	ctx := registrytest.Ctx(t)
	lower := registrytest.Unique("case")
	mixed := strings.ToUpper(lower[:1]) + lower[1:] // "Case-…"
	in := registrytest.Inst(mixed, "a", 8001)
	if err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, ok := raw.get(t, mixed, "a")
	if !ok || got.Instance.App != strings.ToUpper(mixed) || got.Instance.Metadata[eureka.MetaService] != mixed {
		t.Fatalf("server holds %+v, want app %s with %s=%s", got.Instance, strings.ToUpper(mixed), eureka.MetaService, mixed)
	}
	registrytest.ResolvesTo(t, c, mixed, []registries.Instance{in})
	registrytest.ResolvesTo(t, c, lower, nil)

	// Another client's instance, registered in app CASE-… without
	// regshift's metadata.
	foreign := registries.Instance{Service: lower, ID: "spring-1", Address: "127.0.0.1", Port: 9090,
		Metadata: map[string]string{"management.port": "9090"}}
	raw.registerForeign(t, foreign)
	registrytest.ResolvesTo(t, c, lower, []registries.Instance{foreign})
	asMixed := foreign.Clone()
	asMixed.Service = mixed
	registrytest.ResolvesTo(t, c, mixed, []registries.Instance{in, asMixed})
	ch, err := c.Watch(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "watch of "+mixed, []registries.Instance{in, asMixed})
	names, err := c.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, mixed) || !slices.Contains(names, lower) {
		t.Fatalf("services lack %s or %s", mixed, lower)
	}
	raw.cancel(t, registries.Key{Service: lower, ID: "spring-1"})
}

// TestOddIDs: ids with characters a URL path escapes, and one with '\'
// (registered under a hashed instanceId), register, resolve, renew and
// deregister.
func TestOddIDs(t *testing.T) {
	addr := servers.RequireEureka(t)
	c := newClient(t, testConfig(addr))
	ctx := registrytest.Ctx(t)
	svc := registrytest.Unique("ids")
	var want []registries.Instance
	for i, id := range []string{"host:svc:8080", "p%q", "s;t", "q?r", "h#i", "é€", "a+b", "x=y&z", `win\host`, "..a", "[1]"} {
		in := registrytest.Inst(svc, id, 7000+i)
		want = append(want, in)
		if err := c.Register(ctx, in); err != nil {
			t.Fatalf("register %q: %v", id, err)
		}
	}
	registrytest.ResolvesTo(t, c, svc, want)
	raw := rawServer{addr: addr}
	registrytest.Eventually(t, registrytest.Patience, "every lease renewed", func() error {
		insts := raw.app(t, svc)
		for _, in := range insts {
			if !in.renewed() {
				return fmt.Errorf("%q not renewed yet", in.InstanceID)
			}
		}
		if len(insts) != len(want) {
			return fmt.Errorf("%d instances, want %d", len(insts), len(want))
		}
		return nil
	})
	for _, in := range want {
		if err := c.Deregister(ctx, svc, in.ID); err != nil {
			t.Fatalf("deregister %q: %v", in.ID, err)
		}
	}
	registrytest.ResolvesTo(t, c, svc, nil)
}

// TestHealthIsStatus: a critical mark is status DOWN with the output in
// the metadata, at the server; passing is UP without it.
func TestHealthIsStatus(t *testing.T) {
	addr := servers.RequireEureka(t)
	c := newClient(t, testConfig(addr))
	raw := rawServer{addr: addr}
	ctx := registrytest.Ctx(t)
	in := registrytest.Inst(registrytest.Unique("status"), "a", 8001)
	if err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHealth(ctx, in.Service, "a", false, "GET /health: 503"); err != nil {
		t.Fatal(err)
	}
	got, _ := raw.get(t, in.Service, "a")
	if got.Instance.Status != "DOWN" || got.Instance.Metadata[eureka.MetaHealth] != "GET /health: 503" {
		t.Fatalf("marked critical: status %s, %s=%q", got.Instance.Status, eureka.MetaHealth, got.Instance.Metadata[eureka.MetaHealth])
	}
	if err := c.SetHealth(ctx, in.Service, "a", true, ""); err != nil {
		t.Fatal(err)
	}
	got, _ = raw.get(t, in.Service, "a")
	if _, ok := got.Instance.Metadata[eureka.MetaHealth]; got.Instance.Status != "UP" || ok {
		t.Fatalf("marked passing: status %s, metadata %v", got.Instance.Status, got.Instance.Metadata)
	}
}

// TestFailedRegisterCompletedByRenewal: a change of an instance that
// fails to reach the server (503) leaves the server's older copy; the
// next renewal, carrying the newer lastDirtyTimestamp, gets 404 and the
// client registers the change.
func TestFailedRegisterCompletedByRenewal(t *testing.T) {
	addr := servers.RequireEureka(t)
	p := newProxy(t, addr)
	c := newClient(t, testConfig(p.addr))
	ctx := registrytest.Ctx(t)
	in := registrytest.Inst(registrytest.Unique("dirty"), "a", 8001)
	if err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	moved := in.Clone()
	moved.Port = 8002
	p.set(func(p *proxy) { p.failWrites = true })
	if err := c.Register(ctx, moved); !registries.Retriable(err) {
		t.Fatalf("register through a failing proxy: %v, want a retriable error", err)
	}
	registrytest.ResolvesTo(t, c, in.Service, []registries.Instance{in}) // still renewed, still old
	p.set(func(p *proxy) { p.failWrites = false })
	registrytest.ResolvesTo(t, c, in.Service, []registries.Instance{moved})
}

// TestWatchDeltaThenFull: a watch fetches in full once, then follows by
// deltas alone; a delta that lost its changes (the registration of b)
// leaves the view off the server's hash code, so the loop fetches in full
// at once and delivers what the lost delta held.
func TestWatchDeltaThenFull(t *testing.T) {
	addr := servers.RequireEureka(t)
	p := newProxy(t, addr)
	writer := newClient(t, testConfig(addr))
	c := newClient(t, testConfig(p.addr))
	ctx := registrytest.Ctx(t)
	svc := registrytest.Unique("delta")
	ch, err := c.Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "initial", nil)
	a, b := registrytest.Inst(svc, "a", 8001), registrytest.Inst(svc, "b", 8002)
	if err := writer.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "a by delta", []registries.Instance{a})
	if full, deltas := p.fetches(); full != 1 || deltas == 0 {
		t.Fatalf("%d full and %d delta fetches, want 1 full then deltas", full, deltas)
	}

	p.set(func(p *proxy) { p.dropFrom = [2]string{strings.ToUpper(svc), "b"} })
	if err := writer.Register(ctx, b); err != nil {
		t.Fatal(err)
	}
	registrytest.AwaitSet(t, ch, "b after the lost delta", []registries.Instance{a, b})
	if full, _ := p.fetches(); full < 2 {
		t.Fatalf("%d full fetches after a lost delta, want a second", full)
	}
}

// TestLeaseExpires: the instances of a client that stops renewing
// without cancelling them (it died) are evicted by the server: 2 x
// LeaseDuration after the last renewal (Eureka's Lease.isExpired), plus up
// to the eviction interval.
func TestLeaseExpires(t *testing.T) {
	addr := servers.RequireEureka(t)
	cfg := testConfig(addr)
	cfg.LeaseDuration = 2 * time.Second
	cfg.DeregisterOnClose = false
	c := newClient(t, cfg)
	observer := newClient(t, testConfig(addr))
	in := registrytest.Inst(registrytest.Unique("expire"), "a", 8001)
	if err := c.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	registrytest.ResolvesTo(t, observer, in.Service, []registries.Instance{in})
	raw := rawServer{addr: addr}
	registrytest.Eventually(t, registrytest.Patience, "the lease renewed", func() error {
		if got, _ := raw.get(t, in.Service, in.ID); !got.Instance.renewed() {
			return errors.New("not renewed yet")
		}
		return nil
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	registrytest.ResolvesTo(t, observer, in.Service, nil)
	t.Logf("evicted %v after the client stopped renewing (lease %v, renewals every %v)",
		time.Since(start).Round(100*time.Millisecond), cfg.LeaseDuration, cfg.RenewalInterval)
}

// TestServerRestart kills a private Eureka under a client with
// registrations and a watch: while it is down operations fail with the
// retriable error; it comes back empty (Eureka keeps its registry in
// memory), and within a renewal every registration — also one attempted
// while it was down — is there again and the watch follows.
func TestServerRestart(t *testing.T) {
	p := servers.StartPrivate(t, servers.Eureka)
	c := newClient(t, testConfig(p.Addr()))
	registrytest.ServerRestart(t, c, func() { p.Kill(t) }, func() { p.Start(t) })
}

// registerForeign registers in as another Eureka client would: in app
// upper(service), without regshift's metadata, with a lease the test
// cancels itself.
func (s rawServer) registerForeign(t testing.TB, in registries.Instance) {
	t.Helper()
	md := `{}`
	if len(in.Metadata) > 0 {
		var parts []string
		for k, v := range in.Metadata {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
		md = "{" + strings.Join(parts, ",") + "}"
	}
	body := fmt.Sprintf(`{"instance":{"instanceId":%q,"hostName":%q,"app":%q,"ipAddr":%q,"status":"UP",`+
		`"port":{"$":%d,"@enabled":"true"},"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":%s,"vipAddress":%q}}`,
		in.ID, in.Address, strings.ToUpper(in.Service), in.Address, in.Port, md, strings.ToLower(in.Service))
	resp, err := http.Post("http://"+s.addr+"/eureka/apps/"+strings.ToUpper(in.Service), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("register %v as another client: HTTP %d", in.Key(), resp.StatusCode)
	}
}
