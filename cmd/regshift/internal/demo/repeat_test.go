package demo

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
)

// TestTwentyHealthyDemoRollouts runs `make demo`'s demo 20 times in a row —
// the same fleet (4 providers, 4 consumers calling every 20 ms), the same
// plan, no -fail, on the real Kafka (where `make demo` runs on the embedded
// one unless KAFKA is set) and ZooKeeper — and wants every one to end
// finalized, without a switch-back decision, and with no failed app call.
// Nothing goes wrong in these rollouts, so any switch-back is a false
// verdict.
//
// It runs the whole demo (Run) each time rather than a cheaper variant.
// One run takes about 21 s, with -race too (20 runs: about 7 min); 14–15 s
// of it is the rollout itself (six waves, each soaking 2 s), which no
// variant can skip. Reusing one fleet and coordinator for 20 rollouts back
// and forth would save only the ~6 s of setup a run (the demo's own
// Consul, keys, coordinator, fleet, the 2 s of calls before the request) —
// at best about 5 min in all — and would run a reverse plan (Consul →
// ZooKeeper) the demo never runs instead of the demo.
func TestTwentyHealthyDemoRollouts(t *testing.T) {
	if testing.Short() {
		t.Skip("20 whole demos, about 7 minutes: not in -short")
	}
	const runs = 20
	bin := consulBin(t)
	o := Options{ZooKeeper: servers.RequireZooKeeper(t)[0], Kafka: servers.RequireKafka(t), ConsulBin: bin,
		Providers: 4, Consumers: 4, CallEvery: 20 * time.Millisecond} // cli.demoCmd's defaults
	start := time.Now()
	for i := range runs {
		var out bytes.Buffer
		// The component logs the CLI keeps quiet, for a failure to be read.
		logs := &itest.SyncBuffer{}
		o.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a run takes ~21 s
		runStart := time.Now()
		err := Run(ctx, o, &out)
		cancel()
		report := out.String()
		var problems []string
		if err != nil {
			problems = append(problems, err.Error())
		}
		if !strings.Contains(report, "ended finalized") {
			problems = append(problems, "the report does not say it ended finalized")
		}
		if strings.Contains(report, "decision switch-back") || strings.Contains(report, "switch-back decided") {
			problems = append(problems, "a switch-back was decided in a healthy rollout (a false verdict)")
		}
		if !strings.Contains(report, " 0 failed (") {
			problems = append(problems, "app calls failed")
		}
		if len(problems) > 0 {
			t.Fatalf("run %d of %d (after %d healthy): %s\n%s\ncomponent logs, warnings and errors:\n%s\nthe last lines:\n%s",
				i+1, runs, i, strings.Join(problems, "; "), report, grepLines(logs.String(), "level=WARN", "level=ERROR"), lastLines(logs.String(), 150))
		}
		t.Logf("run %d of %d: finalized, 0 failed calls, %s", i+1, runs, time.Since(runStart).Round(100*time.Millisecond))
	}
	t.Logf("%d healthy demo rollouts in %s", runs, time.Since(start).Round(time.Second))
}

// grepLines keeps the lines of text that contain any of subs.
func grepLines(text string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// lastLines is the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
