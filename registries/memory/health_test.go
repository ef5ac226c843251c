package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/registries/registrytest"
)

// TestSetHealthWhileDownAppliedWhenBack: a mark set while the store does
// not answer is a retriable error, kept, and applied once it answers.
func TestSetHealthWhileDownAppliedWhenBack(t *testing.T) {
	s := memory.NewStore()
	c := client(t, s)
	observer := client(t, s)
	svc := registrytest.Unique("health-down")
	a, b := registrytest.Inst(svc, "a", 80), registrytest.Inst(svc, "b", 81)
	for _, in := range []registries.Instance{a, b} {
		if err := c.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	s.SetDown(true)
	if err := c.SetHealth(context.Background(), svc, "a", false, "refused"); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("SetHealth while down: %v, want ErrUnavailable", err)
	}
	s.SetDown(false)
	registrytest.ResolvesTo(t, observer, svc, []registries.Instance{b})
}
