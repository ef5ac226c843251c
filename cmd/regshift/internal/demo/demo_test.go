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

// TestDemo runs the demo on the real servers — the migration, the failure
// demo, and the migration on the embedded Kafka — and checks what the report says: the outcome, and that no
// app call failed.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name           string
		fail, embedded bool
	}{{"migration", false, false}, {"failure", true, false}, {"migration-embedded-kafka", false, true}} {
		fail := tc.fail
		t.Run(tc.name, func(t *testing.T) {
			o := Options{ZooKeeper: servers.RequireZooKeeper(t)[0], ConsulBin: consulBin(t),
				Providers: 2, Consumers: 2, Fail: fail, CallEvery: 50 * time.Millisecond}
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
			want := "ended finalized"
			if fail {
				want = "ended switched-back"
			}
			if !strings.Contains(out.String(), want) {
				t.Fatalf("report lacks %q", want)
			}
			if !strings.Contains(out.String(), " 0 failed (") {
				t.Fatal("app calls failed during the migration")
			}
		})
	}
}
