package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
)

// TestOperateARealCoordinator runs `regshift coordinator` in the test on
// the real servers, creates a rollout with `rollout create` for nodes that
// have no agent, and follows it with `rollout status` and `nodes`: the
// first node's install goes unanswered, fails its wave, and the rollout
// switches back while the coordinator keeps re-sending the switch-back.
func TestOperateARealCoordinator(t *testing.T) {
	brokers := servers.RequireKafka(t)
	zk := servers.RequireZooKeeper(t)[0]
	consulAddr := servers.RequireConsul(t)
	dir := t.TempDir()
	for id, out := range map[string]string{"coord": "coord", "ops": "ops", "p1": "nodes"} { // p1: a node enrolled, though no agent runs
		if _, _, err := run(t, "keys", "generate", "-id", id, "-out", filepath.Join(dir, out)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ops", events.RolesFile), []byte("ops admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := "clitest." + newRequestID()[4:] + "."
	cfg := "id: coord-cli\nbrokers: [" + strings.Join(brokers, ", ") + "]\ntopicPrefix: " + prefix +
		"\nsigningKey: coord/coord.key\noperatorKeysDir: ops\nnodeKeysDir: nodes\nlisten: 127.0.0.1:0\ntick: 100ms\nregistryEvery: 200ms\ncommandPartitions: 2\n"
	if err := os.WriteFile(filepath.Join(dir, "coordinator.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(brokers, events.NewTopics(prefix)) })
	plan, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	// A ZooKeeper base path of its own: the bridge has nothing to mirror.
	plan = []byte(strings.NewReplacer("address: 127.0.0.1:2181", "address: "+zk+"/regshift-"+prefix[:len(prefix)-1],
		"address: 127.0.0.1:8500", "address: "+consulAddr, "ack_timeout_seconds: 30", "ack_timeout_seconds: 10").Replace(string(plan)))
	if err := os.WriteFile(filepath.Join(dir, "plan.yaml"), plan, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs itest.SyncBuffer
	go func() {
		done <- (&CLI{Stdout: &logs, Stderr: &logs}).Run(ctx, []string{"coordinator", "-c", filepath.Join(dir, "coordinator.yaml")})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("coordinator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("coordinator did not stop within 30s of its context")
		}
		if t.Failed() {
			t.Logf("coordinator log:\n%s", logs.String())
		}
	}()
	// The coordinator binds port 0; its log says which port it got.
	var api string
	itest.Eventually(t, time.Minute, "the coordinator listens", func() error {
		m := regexp.MustCompile(`API listening.*?addr"?[=:]"?([0-9.]+:[0-9]+)`).FindStringSubmatch(logs.String())
		if m == nil {
			return errors.New(`no "API listening" line yet`)
		}
		api = m[1]
		return nil
	})
	itest.Eventually(t, time.Minute, "the coordinator leads", func() error {
		var h server.Health
		if err := newAPIClient("http://"+api).get(ctx, "/healthz", &h); err != nil {
			return err
		}
		if !h.Leader {
			return errors.New("standing by")
		}
		return nil
	})

	pub := []string{"-id", "ro-cli", "-brokers", strings.Join(brokers, ","), "-prefix", prefix, "-key", filepath.Join(dir, "ops", "ops.key")}
	if _, stderr, err := run(t, append([]string{"rollout", "create", "-f", filepath.Join(dir, "plan.yaml")}, pub...)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var status string
	itest.Eventually(t, time.Minute, "the rollout switching back", func() error {
		out, _, err := run(t, "rollout", "status", "-id", "ro-cli", "-api", "http://"+api)
		status = out
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "rollout ro-cli: switching-back") {
			return errors.New(strings.SplitN(out, "\n", 2)[0])
		}
		return nil
	})
	for _, want := range []string{"wave 1/6 provider [-] 0/1 switched back", "failure: install: no answer within 10s",
		"switch-back sent", "created ", "node-unknown  check ack-timeout; nodes p1"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	out, _, err := run(t, "nodes", "-api", "http://"+api)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "p1    ro-cli   1     provider") || !strings.Contains(out, "install: no answer within 10s  switch-back sent") {
		t.Errorf("nodes does not show p1's failure and pending switch-back:\n%s", out)
	}
}
