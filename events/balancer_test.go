package events_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (run with -update if the change is intended):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestPartitionGolden pins the key -> partition function: agents and other
// systems reproduce it, so it must never change silently.
func TestPartitionGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# key partitions=12 partitions=5 (32-bit FNV-1a of the key bytes, modulo the count)\n")
	for _, k := range []string{"", "node-0", "node-1", "node-17", "node-18", "ro-2026-11-26-consul", "epoch", "host-α"} {
		fmt.Fprintf(&b, "%q %d %d\n", k, events.Partition([]byte(k), 12), events.Partition([]byte(k), 5))
	}
	golden(t, "partitions.golden", []byte(b.String()))
}

func TestKeyBalancerAgreesWithPartition(t *testing.T) {
	parts := []int{0, 1, 2, 3, 4, 5, 6}
	seen := map[int]bool{}
	for i := range 200 {
		key := []byte(fmt.Sprintf("node-%d", i))
		got := events.KeyBalancer{}.Balance(kafka.Message{Key: key}, parts...)
		if want := events.Partition(key, len(parts)); got != want {
			t.Fatalf("key %s: balancer %d, Partition %d", key, got, want)
		}
		seen[got] = true
	}
	if len(seen) != len(parts) {
		t.Errorf("200 keys reached %d of %d partitions", len(seen), len(parts))
	}
}
