package demo

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriteCallTable: the calls per consumer are an aligned table, a column
// per registry that answered (the fleet's from and to first, then any other,
// sorted), failed and total, with a row for all; each last failure below.
func TestWriteCallTable(t *testing.T) {
	rows := []callRow{
		{node: "consumer-1", answered: map[string]int64{"zookeeper": 120, "consul": 9}},
		{node: "consumer-2", answered: map[string]int64{"zookeeper": 7, "consul": 1000, "etcd": 3}, failed: 2,
			lastErr: "resolve: connection refused"},
	}
	kinds := callKinds([]string{"zookeeper", "consul"}, rows)
	var out bytes.Buffer
	if err := writeCallTable(&out, kinds, rows); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"  consumer    zookeeper  consul  etcd  failed  total",
		"  consumer-1  120        9       0     0       129",
		"  consumer-2  7          1000    3     2       1012",
		"  all         127        1009    3     2       1141",
		"  consumer-2's last failed call: resolve: connection refused",
		"",
	}, "\n")
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := answeredBy(t, out.String(), "consul"); got != 1009 {
		t.Errorf("answeredBy consul = %d, want 1009", got)
	}
}
