package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// coordProcess is `regshift coordinator` as its own process. Its config
// says listen: 127.0.0.1:0, so the system picks a free port when the
// process binds it (no port is picked early and bound later); the test
// reads it from the "API listening" line of the log.
type coordProcess struct {
	file string
	cmd  *exec.Cmd
	out  itest.SyncBuffer
	from int // where this run's output starts in out
}

var listeningRE = regexp.MustCompile(`API listening.*?addr"?[=:]"?([0-9.]+:[0-9]+)`)

// api waits for the running process to log its API address.
func (p *coordProcess) api(t *testing.T) string {
	t.Helper()
	var addr string
	itest.Eventually(t, time.Minute, "the coordinator listens", func() error {
		m := listeningRE.FindStringSubmatch(p.out.String()[p.from:])
		if m == nil {
			return fmt.Errorf("no \"API listening\" line yet")
		}
		addr = m[1]
		return nil
	})
	return "http://" + addr
}

func (p *coordProcess) start(t *testing.T) {
	t.Helper()
	p.from = len(p.out.String())
	p.cmd = exec.Command(itest.Binary(t), "coordinator", "-c", p.file)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (p *coordProcess) signal(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// TestCoordinatorKilledMidWave kills `regshift coordinator` with SIGKILL
// in the middle of a wave, starts it again, and checks that it replays its
// state, completes the rollout, and that no agent carried out a command twice.
func TestCoordinatorKilledMidWave(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	agents := startFleet(t, env, ordersSvc)
	file := filepath.Join(env.Dir, "coordinator.yaml")
	cfg := fmt.Sprintf("id: coord-k\nbrokers: [%s]\ntopicPrefix: %s\nsigningKey: %s\nacceptUnsigned: true\nnodeKeysDir: %s\nlisten: 127.0.0.1:0\ntick: 200ms\nregistryEvery: 500ms\ncommandPartitions: 4\n",
		env.Brokers[0], env.Prefix, filepath.Join(env.KeysDir, "coordinator-itest.key"), env.NodeKeysDir)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &coordProcess{file: file}
	p.start(t)
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("coordinator output:\n%s", p.out.String())
		}
	})
	co := &coord{api: p.api(t)}
	itest.Eventually(t, time.Minute, "the coordinator leads", func() error { return leads(co, true) })

	pl := plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})
	pl.Gates.SoakSeconds = 2
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: pl})
	itest.Eventually(t, 2*time.Minute, "wave 2", func() error {
		r, err := co.rollout(env.RolloutID)
		if err != nil {
			return err
		}
		if r.Wave < 1 {
			return fmt.Errorf("wave %d", r.Wave+1)
		}
		return nil
	})
	p.signal(syscall.SIGKILL) // mid-wave, no goodbye
	p.start(t)
	co.api = p.api(t)

	r := co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	if r.Epoch < 2 {
		t.Fatalf("the restarted coordinator finished with epoch %d, want a new claim", r.Epoch)
	}
	for id, ag := range agents {
		for _, kind := range []string{"install", "activate", "uninstall"} {
			if n := appliedCount(t, ag, kind); n != 1 {
				t.Fatalf("%s carried out %s %d times", id, kind, n)
			}
		}
	}
}
