package watch

import (
	"context"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

func set(ids ...string) []registries.Instance {
	var out []registries.Instance
	for _, id := range ids {
		out = append(out, registries.Instance{Service: "s", ID: id, Address: "h", Port: 1})
	}
	return out
}

func TestOfferKeepsOnlyTheLatest(t *testing.T) {
	ch := make(chan []registries.Instance, 1)
	Offer(ch, set("a"))
	Offer(ch, set("a", "b"))
	Offer(ch, set("c"))
	if got := <-ch; !Same(got, set("c")) {
		t.Fatalf("read %v, want the latest set", got)
	}
	select {
	case got := <-ch:
		t.Fatalf("a stale set %v was left behind", got)
	default:
	}
}

func TestSame(t *testing.T) {
	if !Same(nil, set()) || !Same(set("a", "b"), set("a", "b")) || Same(set("a"), set("b")) || Same(set("a"), set("a", "b")) {
		t.Fatal("Same disagrees with set equality")
	}
}

func TestBackoffStopsWithContext(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	for range 4 {
		if !b.Wait(context.Background()) {
			t.Fatal("Wait gave up without a cancelled context")
		}
	}
	if b.cur != b.Max {
		t.Fatalf("delay %v after four waits, want capped at %v", b.cur, b.Max)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx) {
		t.Fatal("Wait went on with a cancelled context")
	}
}
