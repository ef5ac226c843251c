package server_test

import (
	"fmt"

	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/browser"
	"github.com/regshift/regshift/schema"
)

// TestConsoleInTheBrowser drives the console in Debian's Chromium during a
// rollout of real agents over the real Kafka, ZooKeeper and Consul: the
// rollouts page lists it; the rollout's page shows a wave advance live
// (without a reload); an operator key file is loaded into the page, which
// signs a pause with WebCrypto and posts it; the coordinator relays it and
// acts on it (paused, by that key); a resume from the page lets the
// rollout finish. A standby replica's page names the leader, and takes
// over the rollout when the leader stops. Each page's screenshot is in the
// test's artifacts (go test -artifacts); REGSHIFT_UPDATE_DOCS=1 writes
// docs/console.png from the rollout's page.
func TestConsoleInTheBrowser(t *testing.T) {
	env := itest.New(t)
	b := browser.New(t)
	svc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	roles := map[string]string{}
	var providers []*itest.Agent
	for i := 1; i <= 3; i++ {
		p, c := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i)
		providers = append(providers, env.StartAgent(t, itest.Provider(p, svc)))
		env.StartAgent(t, itest.Consumer(c, svc))
		roles[p], roles[c] = "provider", "consumer"
	}
	awaitProviders(t, env, svc, providers...)

	// The operator: a key pair as `regshift keys generate` writes it, its
	// .pub in the coordinators' operator keyring with the role operate.
	const op = "console-op"
	private, operators := t.TempDir(), t.TempDir()
	itest.KeyPair(t, private, op)
	if err := os.Rename(filepath.Join(private, op+events.PublicKeyExt), filepath.Join(operators, op+events.PublicKeyExt)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(operators, events.RolesFile), []byte(op+" operate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withOperators := func(c *server.Config) { c.OperatorKeysDir = operators }
	co := startCoordinator(t, env, "coord-a", withOperators)

	// Six waves (1 + 1 + 1 of each role), each soaking 4 s: time to watch.
	p := plan(env, url, digest, roles)
	p.Waves = schema.Waves{Canary: 1, Percentages: []int{50, 100}, MaxInFlight: 2}
	p.Gates.SoakSeconds = 4
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-create"), Plan: p})
	id := env.RolloutID

	b.Navigate(co.api + "/")
	b.WaitText("#rollouts", id)
	b.WaitText("#replica", "leader")
	b.Screenshot("rollouts")

	b.Navigate(co.api + "/#/rollouts/" + id)
	b.WaitText("#ro-wave", " of 6")
	browser.Eval[bool](b, "window.loadedOnce = true")
	wave := func() int {
		w, _, _ := strings.Cut(browser.Eval[string](b, `document.querySelector("#ro-wave").textContent`), " ")
		n, err := strconv.Atoi(w)
		if err != nil {
			t.Fatalf("wave %q: %v", w, err)
		}
		return n
	}
	from := wave()
	if from >= 6 {
		t.Fatalf("the page opened in wave %d of 6: nothing left to see advance", from)
	}
	b.WaitText("#ro-wave", fmt.Sprintf("%d of 6", from+1))
	if !browser.Eval[bool](b, "window.loadedOnce === true") {
		t.Fatal("the page was reloaded: the wave did not advance live")
	}
	t.Logf("the page saw wave %d become wave %d live", from, from+1)
	// Hovering a node's square names it, its progress, health and pending
	// command.
	type point struct{ X, Y float64 }
	at := browser.Eval[point](b, `(() => { const c = document.querySelector("#wave-1 canvas"); c.scrollIntoView({block: "center"}); const r = c.getBoundingClientRect(); return {X: r.left + 4, Y: r.top + 4}; })()`)
	b.Do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, at.X, at.Y))
	tip := b.WaitText("#tip", "wave 1")
	for _, want := range []string{"provider", "progress: ", "health: ", "pending: "} {
		if !strings.Contains(tip, want) {
			t.Fatalf("the hover tip %q lacks %q", tip, want)
		}
	}
	b.Screenshot("rollout")
	if os.Getenv("REGSHIFT_UPDATE_DOCS") != "" {
		b.ScreenshotTo(filepath.Join("..", "..", "docs", "console.png"))
	}

	// Sign a pause in the page, with the key loaded from its file.
	b.SetFiles("#key-file", filepath.Join(private, op+events.PrivateKeyExt))
	b.WaitText("#key-state", op+" loaded")
	b.Click("#act-pause")
	b.WaitText("#action-result", "relayed")
	b.WaitText("#ro-title", "paused")
	b.WaitText("#decisions", "by "+op)
	r, err := co.rollout(id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Paused || !lastDecision(r, schema.DecisionPaused, op) {
		t.Fatalf("after the page's pause: paused %v, decisions %+v", r.Paused, r.Decisions)
	}
	b.Screenshot("paused")
	b.Click("#act-resume")
	b.WaitText("#decisions", string(schema.DecisionResumed))
	b.WaitText("#ro-title", string(schema.PhaseFinalized))
	b.Screenshot("finalized")

	browser.Eval[string](b, `location.hash = "#/nodes?state=uninstalled"`)
	b.WaitText("#f-count", "6 of 6 nodes match")
	b.Screenshot("nodes")
	b.RequireNoExceptions()
	if blocked := b.Blocked(); len(blocked) > 0 {
		t.Fatalf("the page asked beyond 127.0.0.1: %v", blocked)
	}

	// A standby's page says which replica leads; when the leader stops, the
	// standby takes over and the same page shows the rollout.
	cb := startCoordinator(t, env, "coord-b", withOperators)
	b.Navigate(cb.api + "/")
	b.WaitText("#banner", "The leader is coord-a")
	b.WaitText("#replica", "standby")
	b.Screenshot("standby")
	co.stop(t)
	b.WaitText("#replica", "coord-b · leader")
	b.WaitText("#rollouts", id)
	b.RequireNoExceptions()
}

// lastDecision reports whether the rollout's last decision is kind and
// names who.
func lastDecision(r coordinator.Rollout, kind schema.DecisionKind, who string) bool {
	if len(r.Decisions) == 0 {
		return false
	}
	d := r.Decisions[len(r.Decisions)-1]
	return d.Decision == kind && strings.Contains(d.Detail, who)
}
