package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/registries/registrytest"
)

func client(t *testing.T, s *memory.Store) *memory.Client {
	c := memory.New(s, registrytest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	store := registrytest.PerTest(func(*testing.T) *memory.Store { return memory.NewStore() })
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry { return client(t, store(t)) },
		Disruptable: func(t *testing.T) (registries.Registry, func()) {
			s := memory.NewStore()
			return client(t, s), s.Expire
		},
		Down: func(t *testing.T) registries.Registry {
			s := memory.NewStore()
			s.SetDown(true)
			return client(t, s)
		},
		Health: true,
	})
}

func BenchmarkRegistry(b *testing.B) {
	registrytest.Bench(b, func(b *testing.B) registries.Registry {
		c := memory.New(memory.NewStore(), nil)
		b.Cleanup(func() { _ = c.Close() })
		return c
	})
}

func TestRegisterWhileDownCompletesWhenBack(t *testing.T) {
	s := memory.NewStore()
	c := client(t, s)
	in := registrytest.Inst(registrytest.Unique("late"), "a", 80)
	s.SetDown(true)
	if err := c.Register(context.Background(), in); !errors.Is(err, registries.ErrUnavailable) {
		t.Fatalf("register while down: %v, want ErrUnavailable", err)
	}
	s.SetDown(false)
	registrytest.ResolvesTo(t, client(t, s), in.Service, []registries.Instance{in})
}
