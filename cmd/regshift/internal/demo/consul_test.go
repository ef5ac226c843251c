package demo

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFreePortsDistinctAndFreeForUDP(t *testing.T) {
	ports, err := freePorts(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d picked twice: %v", p, ports)
		}
		seen[p] = true
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free for UDP after the pick: %v", p, err)
		}
		u.Close()
	}
}

// TestConsulStartRetriesABindFailure: an agent that exits before it elects
// a leader (here: the first start, made to fail as a port taken between the
// pick and Consul's bind would) is started again on new ports, and the
// demo's Consul comes up; the error of a start that never succeeds quotes
// the agent's log.
func TestConsulStartRetriesABindFailure(t *testing.T) {
	bin := consulBin(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "failed-once")
	wrapper := filepath.Join(dir, "consul-wrapper")
	script := "#!/bin/sh\nif [ ! -e " + marker + " ]; then touch " + marker +
		"; echo 'error: Failed to start Consul server: listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1; fi\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := &world{o: Options{ConsulBin: wrapper}, out: io.Discard, dir: dir}
	defer w.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.startConsul(ctx); err != nil {
		t.Fatalf("start after one bind failure: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the first start did not run (the test proves nothing)")
	}
	if tail := logTail(filepath.Join(dir, "consul-1.log"), 400); !strings.Contains(tail, "address already in use") {
		t.Fatalf("first attempt's log: %q", tail)
	}
	w.stop()
	w.stops = nil

	// A binary that always exits: three attempts, then an error naming why.
	always := filepath.Join(dir, "consul-broken")
	if err := os.WriteFile(always, []byte("#!/bin/sh\necho 'bind: address already in use' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w2 := &world{o: Options{ConsulBin: always}, out: io.Discard, dir: t.TempDir()}
	defer w2.stop()
	err := w2.startConsul(ctx)
	if err == nil || !strings.Contains(err.Error(), "attempt 3") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("want the third attempt's error quoting the log, got %v", err)
	}
}
