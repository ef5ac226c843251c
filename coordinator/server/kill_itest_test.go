package server_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// coordProcess is `regshift coordinator` as its own process.
type coordProcess struct {
	file string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func (p *coordProcess) start(t *testing.T) {
	t.Helper()
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
	agents := map[string]*itest.Agent{
		"p1": env.StartAgent(t, itest.Provider("p1", ordersSvc)),
		"p2": env.StartAgent(t, itest.Provider("p2", ordersSvc)),
		"c1": env.StartAgent(t, itest.Consumer("c1", ordersSvc)),
		"c2": env.StartAgent(t, itest.Consumer("c2", ordersSvc)),
	}
	port := servers.FreePort(t)
	file := filepath.Join(env.Dir, "coordinator.yaml")
	cfg := fmt.Sprintf("id: coord-k\nbrokers: [%s]\ntopicPrefix: %s\nsigningKey: %s\nacceptUnsigned: true\nlisten: 127.0.0.1:%d\ntick: 200ms\nregistryEvery: 500ms\ncommandPartitions: 4\n",
		env.Brokers[0], env.Prefix, filepath.Join(env.KeysDir, "coordinator-itest.key"), port)
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
	co := &coord{api: "http://127.0.0.1:" + strconv.Itoa(port)}
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
