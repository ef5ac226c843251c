package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 26, 9, 57, 0, 0, time.UTC)

// cannedRollouts are two rollouts of the real coordinator types: one in
// its second wave with a node that has not answered its activate, one
// switched back after a node failed.
func cannedRollouts(t *testing.T) []*coordinator.Rollout {
	t.Helper()
	p, err := loadPlan(planFile)
	if err != nil {
		t.Fatal(err)
	}
	p.Waves.Percentages = []int{100} // canary, then the rest: four waves
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f := func(v float64) *float64 { return &v }

	r, _, err := coordinator.NewRollout("ro-2026-11-26-consul", p, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	r.Phase, r.Wave, r.Now, r.SoakStarted = schema.PhaseRolling, 1, at(95), at(90)
	r.Registry = coordinator.RegistryReport{At: at(94), Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		switch n.ID {
		case "p1", "p2":
			n.Reached, n.Touched, n.ActiveAt, n.Health, n.HealthAt = schema.ReachedActive, true, at(40), schema.HealthPassing, at(93)
		case "p3":
			n.Reached, n.Touched = schema.ReachedInstalled, true
			cmd := coordinator.Command{ID: coordinator.CommandID(r.ID, n.ID, schema.CommandActivate), Node: n.ID,
				Kind: schema.CommandActivate, Interface: "consul"}
			n.Pending = &coordinator.Pending{Command: cmd, FirstSent: at(60), LastSent: at(90), Sends: 2}
		}
	}
	r.Decisions = append(r.Decisions,
		coordinator.Decision{At: at(5), Decision: "prepared", Check: "parity", Observed: f(1), Threshold: f(0.99)},
		coordinator.Decision{At: at(50), Decision: "wave-passed", Check: "healthy-ratio", Observed: f(1), Threshold: f(1),
			Nodes: []string{"p1"}, Detail: "wave 1 of 4 (provider), parity 1.000"})

	old, _, err := coordinator.NewRollout("ro-2026-11-20-consul", p, 2, t0.Add(-6*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	old.Phase, old.Now = schema.PhaseSwitchedBack, old.Created.Add(10*time.Minute)
	old.Nodes[0].Reached, old.Nodes[0].Touched, old.Nodes[0].Failure = schema.ReachedSwitchedBack, true, "ack failed: registry-unavailable"
	old.Decisions = append(old.Decisions,
		coordinator.Decision{At: old.Now.Add(-time.Minute), Decision: "node-failed", Check: "ack", Nodes: []string{"p1"},
			Detail: "ack failed: registry-unavailable"},
		coordinator.Decision{At: old.Now, Decision: "switched-back", Detail: "every touched node is back on zookeeper"})
	return []*coordinator.Rollout{&old, &r}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestStatusAndNodesRendering(t *testing.T) {
	canned := cannedRollouts(t)
	srv := fakeAPI(t, func() []*coordinator.Rollout { return canned })
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"status", []string{"rollout", "status", "-id", "ro-2026-11-26-consul", "-api", srv.URL}},
		{"status-ended", []string{"rollout", "status", "-id", "ro-2026-11-20-consul", "-api", srv.URL + "/"}},
		{"status-list", []string{"rollout", "status", "-api", srv.URL}},
		{"nodes", []string{"nodes", "-api", srv.URL}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, _, err := run(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
		})
	}
}
