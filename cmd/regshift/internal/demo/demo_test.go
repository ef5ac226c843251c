package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
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
	}{
		{"migration", FailNone, false, []string{"ended finalized"}},
		{"failure", FailConsul, false, []string{"ended switched-back"}},
		// The canary provider's app says it is not ready: its agent
		// withdraws it, the coordinator switches back, and the calls it
		// still gets work.
		{"failure-app", FailApp, false, []string{"ended switched-back", "app check failing"}},
		{"migration-embedded-kafka", FailNone, true, []string{"ended finalized"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{ZooKeeper: servers.RequireZooKeeper(t)[0], ConsulBin: consulBin(t),
				Providers: 2, Consumers: 2, Fail: tc.fail, CallEvery: 50 * time.Millisecond}
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
		})
	}
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
