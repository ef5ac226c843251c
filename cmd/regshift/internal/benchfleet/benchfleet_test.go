package benchfleet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRunFinalizes keeps the harness from rotting: 200 simulated nodes on
// the embedded broker finalize without a switch-back, and every figure the
// table prints is measured.
func TestRunFinalizes(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole rollout: not in -short")
	}
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Soak, cfg.Health, cfg.Timeout = 200, 0, time.Second, 3*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	WriteHeader(&table)
	WriteRow(&table, 1, res)
	t.Logf("\n%s", table.String())
	if !res.Finalized() {
		t.Fatalf("phase %q, %d switch-backs, problem %q", res.Phase, res.SwitchBacks, res.Problem)
	}
	if want := int64(3 * cfg.Nodes); res.Commands != want { // install, activate, uninstall
		t.Errorf("%d commands carried out, want %d", res.Commands, want)
	}
	for name, v := range map[string]float64{"elapsed": res.Elapsed.Seconds(), "acks/s": res.PerSecond(res.Acks),
		"commands/s": res.PerSecond(res.Commands), "state bytes": float64(res.StateBytes), "heap peak": float64(res.HeapPeak),
		"raw floor": res.Floor.Seconds(), "ratio": res.Ratio(), "health reports": float64(res.Health), "waves": float64(res.Waves)} {
		if v <= 0 {
			t.Errorf("%s is %v, want it measured", name, v)
		}
	}
}

func TestConfigRefusesWhatCannotRun(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"one node":        func(c *Config) { c.Nodes = 1 },
		"soak in ms":      func(c *Config) { c.Soak = 1500 * time.Millisecond },
		"negative health": func(c *Config) { c.Health = -time.Second },
		"no partitions":   func(c *Config) { c.Partitions = 0 },
		"no timeout":      func(c *Config) { c.Timeout = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			change(&cfg)
			if _, err := Run(context.Background(), cfg, testLog(t)); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }
