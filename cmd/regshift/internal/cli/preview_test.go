package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/zookeeper"
)

// TestPreviewListsUnowned: `rollout preview` reads the old registry (the
// real ZooKeeper) and names, per service, the instances no node of the plan
// registered — a Curator app's own registration, a host outside the plan —
// and not those the plan's nodes registered; -offline reads nothing.
func TestPreviewListsUnowned(t *testing.T) {
	zk := servers.RequireZooKeeper(t)
	base := "/regshift-preview-" + newRequestID()[4:]
	cfg := zookeeper.DefaultConfig(zk...)
	cfg.BasePath = base
	c, err := zookeeper.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, in := range []registries.Instance{
		{Service: "orders", ID: "p1-orders", Address: "127.0.0.1", Port: 9001, Metadata: map[string]string{registries.MetaNode: "p1"}},
		{Service: "orders", ID: "java-1", Address: "127.0.0.1", Port: 9101},                                                              // a Curator app of its own
		{Service: "billing", ID: "b-9", Address: "127.0.0.1", Port: 9201, Metadata: map[string]string{registries.MetaNode: "elsewhere"}}, // a host outside the plan
	} {
		if err := c.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "plan.yaml")
	plan = []byte(strings.Replace(string(plan), "address: 127.0.0.1:2181", "address: "+zk[0]+base, 1))
	if err := os.WriteFile(file, plan, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "rollout", "preview", "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unowned: 2 instances in zookeeper that no node of the plan registered (finalize: refuse)",
		"  billing: b-9 (127.0.0.1:9201)", "  orders: java-1 (127.0.0.1:9101)"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "p1-orders") {
		t.Errorf("preview lists p1's own instance as unowned:\n%s", out)
	}
	out, _, err = run(t, "rollout", "preview", "-offline", "-f", file)
	if err != nil || strings.Contains(out, "unowned:") {
		t.Fatalf("-offline: err %v, output:\n%s", err, out)
	}
}
