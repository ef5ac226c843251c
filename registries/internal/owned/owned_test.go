package owned

import (
	"errors"
	"testing"

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
