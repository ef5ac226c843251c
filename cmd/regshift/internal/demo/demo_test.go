package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

func consulBin(t *testing.T) string {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(strings.TrimSpace(string(root)), ".deps", "bin", "consul")
	if _, err := os.Stat(bin); err != nil {
		msg := "consul binary missing (run `make deps`): " + err.Error()
		if servers.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// TestDemo runs the demo on the real servers — the migration, both failure
// demos, and the migration on the embedded Kafka — and checks what the
// report says: the outcome, what caught a failure, and that no app call
// failed.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     Failure
		embedded bool
		want     []string // besides no failed call
		from, to registries.Kind
		answered registries.Kind // a registry that must have answered calls, or ""
	}{
		{"migration", FailNone, false, []string{"ended finalized"}, "", "", registries.KindConsul},
		{"failure", FailConsul, false, []string{"ended switched-back", "caught by: "}, "", "", ""},
		// The canary provider's app says it is not ready: its agent
		// withdraws it, the coordinator switches back, and the calls it
		// still gets work.
		{"failure-app", FailApp, false, []string{"ended switched-back", "app check failing"}, "", "", ""},
		{"migration-embedded-kafka", FailNone, true, []string{"ended finalized"}, "", "", registries.KindConsul},
		// The other way: a Consul fleet moves to ZooKeeper.
		{"consul-to-zookeeper", FailNone, false, []string{"ended finalized", "move from consul to zookeeper"},
			registries.KindConsul, registries.KindZooKeeper, registries.KindZooKeeper},
		// A Spring Cloud fleet leaves Eureka for Consul.
		{"eureka-to-consul", FailNone, false, []string{"ended finalized", "move from eureka to consul"},
			registries.KindEureka, registries.KindConsul, registries.KindConsul},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{ZooKeeper: servers.RequireZooKeeper(t)[0], ConsulBin: consulBin(t),
				Etcd: servers.EtcdEndpoints()[0], Eureka: servers.EurekaAddr(),
				Providers: 2, Consumers: 2, Fail: tc.fail, CallEvery: 50 * time.Millisecond, From: tc.from, To: tc.to}
			if !tc.embedded {
				o.Kafka = servers.RequireKafka(t)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			err := Run(ctx, o, &out)
			t.Log(out.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q", want)
				}
			}
			if !strings.Contains(out.String(), " 0 failed (") {
				t.Error("app calls failed during the migration")
			}
			if !strings.Contains(out.String(), "console: http://127.0.0.1:") || !strings.Contains(out.String(), "demo-operator.key") {
				t.Error("the demo did not say where its console is and which key signs there")
			}
			if tc.answered != "" && answeredBy(t, out.String(), string(tc.answered)) == 0 {
				t.Errorf("%s answered no call", tc.answered)
			}
		})
	}
}

// answeredBy reads the calls kind answered, all consumers together, from
// the report's call table (writeCallTable); 0 when it has no such column.
func answeredBy(t *testing.T, report, kind string) int64 {
	t.Helper()
	var header []string
	for _, l := range strings.Split(report, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "consumer":
			header = f
		case header != nil && len(f) == len(header) && f[0] == "all":
			if i := slices.Index(header, kind); i > 0 {
				n, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					t.Fatalf("call table row %q: %v", l, err)
				}
				return n
			}
			return 0
		}
	}
	t.Fatalf("no call table in the report:\n%s", report)
	return 0
}

// TestRunRefusesAnUnknownFailure: a bad Fail is refused before anything
// starts, naming the field and the failures there are.
func TestRunRefusesAnUnknownFailure(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Fail: "zookeeper"}, &out)
	if err == nil {
		t.Fatal("Run accepted Fail \"zookeeper\"")
	}
	for _, want := range []string{"fail", `"zookeeper"`, "consul or app"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if out.Len() > 0 {
		t.Errorf("Run started anyway:\n%s", out.String())
	}
}

// TestNodeReason: the report's "caught by" reason of each node of a
// switch-back is what the decision's Detail says of it, up to the next
// node's; failing that, the node's health.
func TestNodeReason(t *testing.T) {
	app := "critical (app check failing (1): p1 (http): GET http://127.0.0.1:1/health: 503 Service Unavailable; orders: 1 missing: p1)"
	two := coordinator.Decision{Nodes: []string{"p1", "c1"}, Detail: "wave 3: failure-budget failed. p1: " + app + "; c1: activate failed: registry-unavailable"}
	critical := &coordinator.Node{Health: schema.HealthCritical, HealthDetail: "consul ping: unavailable"}
	for _, tc := range []struct {
		name string
		d    coordinator.Decision
		id   string
		n    *coordinator.Node
		want string
	}{
		{"the first of two, whose reason holds a ;", two, "p1", nil, app},
		{"the last", two, "c1", nil, "activate failed: registry-unavailable"},
		{"not in the detail: the node's health", coordinator.Decision{Nodes: []string{"p1"}, Detail: "wave 1: failed"}, "p1", critical,
			"critical (consul ping: unavailable)"},
		{"nothing else: the detail", coordinator.Decision{Nodes: []string{"p1"}, Detail: "wave 1: failed"}, "p1", &coordinator.Node{}, "wave 1: failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeReason(tc.d, tc.id, tc.n); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHold: no Hold holds nothing and says nothing; any other ends when ctx
// does (Ctrl-C), saying where the console is.
func TestHold(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		hold time.Duration
		want string
	}{
		{"none", 0, ""},
		{"a while, ended by Ctrl-C", time.Hour, "holding the coordinator open for 1h0m0s at http://127.0.0.1:1/ (Ctrl-C ends it"},
		{"until Ctrl-C", -time.Second, "holding the coordinator open at http://127.0.0.1:1/ until Ctrl-C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			(&world{o: Options{Hold: tc.hold}, out: &out}).hold(ended, "http://127.0.0.1:1")
			if tc.want == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("said %q, want %q", out.String(), tc.want)
			}
		})
	}
}
