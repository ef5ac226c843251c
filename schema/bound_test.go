package schema_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/regshift/regshift/schema"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text", 8, "a lon…"},
		{"ééééé", 6, "é…"}, // never cuts a rune in two
	} {
		got := schema.Truncate(tc.in, tc.max)
		if got != tc.want || len(got) > tc.max || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestList(t *testing.T) {
	if got := schema.List([]string{"a", "b", "c"}, 100); got != "a, b, c" {
		t.Errorf("all fit: %q", got)
	}
	var many []string
	for i := range 10000 {
		many = append(many, fmt.Sprintf("orders/instance-%05d", i))
	}
	got := schema.List(many, schema.MaxDetail)
	if len(got) > schema.MaxDetail || !strings.HasPrefix(got, "orders/instance-00000, ") {
		t.Fatalf("%d bytes: %q", len(got), got)
	}
	var shown int
	if _, err := fmt.Sscanf(got[strings.LastIndex(got, "… and ")+len("… and "):], "%d more", &shown); err != nil {
		t.Fatalf("no count of those left out: %q", got)
	}
	if listed := strings.Count(got, "orders/"); listed+shown != len(many) {
		t.Fatalf("%d listed + %d more != %d", listed, shown, len(many))
	}
	if got := schema.List(many, 10); len(got) > 10 {
		t.Fatalf("tiny bound: %q", got)
	}
}
