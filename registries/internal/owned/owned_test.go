package owned

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/regshift/regshift/registries"
)

func TestSettle(t *testing.T) {
	in := registries.Instance{Service: "s", ID: "a", Address: "h", Port: 1}
	cases := []struct {
		name string
		err  error
		kept bool
	}{
		{"success", nil, true},
		{"unavailable", registries.ErrUnavailable, true},
		{"session lost", registries.ErrSessionLost, true},
		{"refused", errors.New("permission denied"), false},
		{"invalid", &registries.InvalidError{Field: "port"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s Set
			s.Put(in)
			s.Settle(in, tc.err)
			if s.Holds(in) != tc.kept {
				t.Fatalf("held = %v, want %v", s.Holds(in), tc.kept)
			}
		})
	}
}

func TestDropKeepsANewerPut(t *testing.T) {
	var s Set
	old := registries.Instance{Service: "s", ID: "a", Address: "h", Port: 1}
	newer := old
	newer.Port = 2
	s.Put(old)
	s.Put(newer)
	s.Drop(old)
	if !s.Holds(newer) {
		t.Fatal("dropping the old data removed the newer registration")
	}
	if got := s.Take(); len(got) != 1 || len(s.List()) != 0 {
		t.Fatalf("Take = %v, then %d left", got, len(s.List()))
	}
}

func TestMarkHeldAcrossPutUntilDelete(t *testing.T) {
	var s Set
	in := registries.Instance{Service: "s", ID: "a", Address: "h", Port: 1}
	k := in.Key()
	if _, ok := s.Mark(k, NewHealth(false, "down")); ok {
		t.Fatal("marked an instance the set does not hold")
	}
	first := s.Put(in)
	marked, ok := s.Mark(k, NewHealth(false, "down"))
	if !ok || !marked.Health.Critical || marked.Health.Output != "down" {
		t.Fatalf("Mark = %+v, %v", marked, ok)
	}
	if s.Current(first) || !s.Current(marked) {
		t.Fatal("Current does not follow the mark")
	}
	in.Port = 2
	again := s.Put(in)
	if again.Health != marked.Health || s.Current(marked) {
		t.Fatalf("Put of the same key: %+v, want the mark kept and a new version", again)
	}
	s.Delete(k)
	if s.Current(again) {
		t.Fatal("a deleted entry is current")
	}
	if e := s.Put(in); e.Health != (Health{}) || e.Version <= again.Version {
		t.Fatalf("Put after Delete: %+v, want passing and a version never used", e)
	}
}

func TestNewHealthBoundsOutput(t *testing.T) {
	long := strings.Repeat("é", MaxOutput) // 2 bytes a rune: the cut falls inside one
	cases := []struct {
		name, in, want string
	}{
		{"short", "refused", "refused"},
		{"exact", strings.Repeat("x", MaxOutput), strings.Repeat("x", MaxOutput)},
		{"long", long, strings.Repeat("é", (MaxOutput-3)/2) + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(false, tc.in)
			if h.Output != tc.want || len(h.Output) > MaxOutput || !utf8.ValidString(h.Output) || !h.Critical {
				t.Fatalf("NewHealth = %d bytes %q…, want %d bytes", len(h.Output), h.Output[:min(8, len(h.Output))], len(tc.want))
			}
		})
	}
	if NewHealth(true, "") != (Health{}) {
		t.Fatal("passing without output is not the zero mark")
	}
}

// TestApplyWritesTheLatest: a write that finds the entry changed when it
// returns (a SetHealth overtook it) is followed by one of the change; a
// key the set does not hold is not written.
func TestApplyWritesTheLatest(t *testing.T) {
	var s Set
	in := registries.Instance{Service: "s", ID: "a", Address: "h", Port: 1}
	s.Put(in)
	var wrote []Health
	write := func(_ context.Context, e Entry) error {
		wrote = append(wrote, e.Health)
		if len(wrote) == 1 {
			s.Mark(in.Key(), NewHealth(false, "down")) // overtakes the first write
		}
		return nil
	}
	held, err := s.Apply(context.Background(), in.Key(), write)
	if !held || err != nil || len(wrote) != 2 || !wrote[1].Critical {
		t.Fatalf("Apply = %v, %v after writes %+v; want the mark written last", held, err, wrote)
	}
	if held, _ := s.Apply(context.Background(), registries.Key{Service: "s", ID: "b"}, write); held || len(wrote) != 2 {
		t.Fatal("Apply wrote a key the set does not hold")
	}
}

// TestRegisterSettles: Register keeps an instance after a retriable
// failure and drops it after a refusal.
func TestRegisterSettles(t *testing.T) {
	var s Set
	in := registries.Instance{Service: "s", ID: "a", Address: "h", Port: 1}
	fail := func(err error) Write { return func(context.Context, Entry) error { return err } }
	if err := s.Register(context.Background(), in, fail(registries.ErrUnavailable)); !s.Holds(in) || err == nil {
		t.Fatalf("after a retriable failure (%v): held=%v, want held", err, s.Holds(in))
	}
	if err := s.Register(context.Background(), in, fail(errors.New("refused"))); s.Holds(in) || err == nil {
		t.Fatalf("after a refusal (%v): held=%v, want dropped", err, s.Holds(in))
	}
}
