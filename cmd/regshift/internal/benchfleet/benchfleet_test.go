package benchfleet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestRunFinalizes keeps the harness from rotting: 200 simulated nodes on
// the embedded broker, each signing its events with its own key, finalize
// without a switch-back and without an event dead-lettered, and every
// figure the table prints is measured.
func TestRunFinalizes(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole rollout: not in -short")
	}
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Soak, cfg.Health, cfg.Timeout = 200, 0, time.Second, 3*time.Minute
	res := runFinalized(t, cfg)
	if !res.Signed || res.KeysGenerated <= 0 || res.KeysWritten <= 0 {
		t.Errorf("signed %v, keys generated in %s, written in %s: want signed events, both measured", res.Signed, res.KeysGenerated, res.KeysWritten)
	}
	if want := int64(3 * cfg.Nodes); res.Commands != want { // install, activate, uninstall
		t.Errorf("%d commands carried out, want %d", res.Commands, want)
	}
	for name, v := range map[string]float64{"elapsed": res.Elapsed.Seconds(), "acks/s": res.PerSecond(res.Acks),
		"commands/s": res.PerSecond(res.Commands), "state bytes": float64(res.StateBytes), "heap peak": float64(res.HeapPeak),
		"raw floor": res.Floor.Seconds(), "ratio": res.Ratio(), "health reports": float64(res.Health), "waves": float64(res.Waves),
		"round": res.Largest().Round.Seconds(), "round/floor": res.Largest().Ratio()} {
		if v <= 0 {
			t.Errorf("%s is %v, want it measured", name, v)
		}
	}
	checkBursts(t, res)
}

// runFinalized runs cfg, logs its table and ends the test unless the
// rollout finalized without a switch-back.
func runFinalized(t *testing.T, cfg Config) Result {
	t.Helper()
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
	if res.DeadEvents != 0 {
		t.Errorf("the coordinator dead-lettered %v of the fleet's events (-1: its metrics not read), want none", res.DeadEvents)
	}
	return res
}

// checkBursts checks that each kind's largest burst was measured and
// accounted for, inside the rollout.
func checkBursts(t *testing.T, res Result) {
	t.Helper()
	if len(res.Bursts) != 3 {
		t.Fatalf("%d bursts measured, want install, activate and uninstall: %+v", len(res.Bursts), res.Bursts)
	}
	// Waves of 200 nodes: canary 1, then 10, 50, 100 % of each role: the
	// largest wave is 50 nodes, a role's uninstall stage 100.
	for i, want := range []struct {
		kind  schema.CommandKind
		nodes int
	}{{schema.CommandInstall, res.Nodes / 4}, {schema.CommandActivate, res.Nodes / 4}, {schema.CommandUninstall, res.Nodes / 2}} {
		b := res.Bursts[i]
		if b.Kind != want.kind || b.Nodes != want.nodes || b.Commands != want.nodes {
			t.Errorf("burst %d: %s of %d nodes, %d commands; want %s of %d", i, b.Kind, b.Nodes, b.Commands, want.kind, want.nodes)
		}
		for name, v := range map[string]time.Duration{"round": b.Round, "floor": b.Floor, "sign": b.Sign, "encode": b.Encode,
			"verify": b.Verify, "state": b.State, "last ack": b.LastAck, "verify-events": b.VerifyEvents} {
			if v <= 0 {
				t.Errorf("%s burst: %s is %s, want it measured", b.Kind, name, v)
			}
		}
		if res.Signed && b.SignEvents <= 0 {
			t.Errorf("%s burst: sign-events is %s, want it measured", b.Kind, b.SignEvents)
		}
		if b.Acks < int64(b.Nodes) {
			t.Errorf("%s burst: %d acks published within the round, want at least one a node (%d)", b.Kind, b.Acks, b.Nodes)
		}
		if b.StateRecords < int64(b.Nodes) || b.StateBytes <= 0 {
			t.Errorf("%s burst: %d state records (%d bytes) within the round, want at least one a node", b.Kind, b.StateRecords, b.StateBytes)
		}
		if b.Round > res.Elapsed || b.LastAck > b.Round {
			t.Errorf("%s burst: round %s, last ack at %s; want last ack <= round <= create->end %s", b.Kind, b.Round, b.LastAck, res.Elapsed)
		}
	}
	if l := res.Largest(); l.Kind != schema.CommandUninstall {
		t.Errorf("largest burst %s of %d nodes, want an uninstall stage", l.Kind, l.Nodes)
	}
}

// TestSplitMeasuresTheCoordinatorApart runs the coordinator in a child
// process on a real Kafka (skipped without one, outside CI) and checks
// that its heap was measured and the child is gone afterwards.
func TestSplitMeasuresTheCoordinatorApart(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole rollout: not in -short")
	}
	testSplit(t, servers.RequireKafka(t))
}

// TestSplitChildOnEmbeddedBroker is the same split on an embedded broker
// given as if it were a real one, so the child's protocol is tested on
// every machine.
func TestSplitChildOnEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole rollout: not in -short")
	}
	kf, err := embeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	testSplit(t, kf.ListenAddrs())
}

func testSplit(t *testing.T, brokers []string) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Soak, cfg.Health, cfg.Timeout, cfg.Brokers, cfg.Split = 200, 0, time.Second, 3*time.Minute, brokers, true
	var children []*exec.Cmd
	cfg.command = func(args ...string) *exec.Cmd {
		c := exec.Command(os.Args[0], args...) // TestMain serves the coordinator when childEnv is set
		c.Env = append(os.Environ(), childEnv+"=1")
		children = append(children, c)
		return c
	}
	res := runFinalized(t, cfg)
	if res.CoordBase == 0 || res.CoordPeak < res.CoordBase || res.CoordGrowth() == 0 {
		t.Errorf("coordinator heap base %d, peak %d: want both measured, the peak above the base", res.CoordBase, res.CoordPeak)
	}
	checkBursts(t, res)
	if len(children) != 1 {
		t.Fatalf("%d children started, want 1", len(children))
	}
	if st := children[0].ProcessState; st == nil || !st.Exited() {
		t.Errorf("the coordinator child (pid %d) did not exit: %v", children[0].Process.Pid, st)
	}
}

// childEnv makes the test binary the coordinator child of a split run.
const childEnv = "BENCHFLEET_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := ServeCoordinator(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "coordinator child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
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

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }
