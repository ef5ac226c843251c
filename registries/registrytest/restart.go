package registrytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

// ServerRestart kills the registry server under r — a client with three
// registrations and a watch — with kill, and checks that while it is down
// Ping fails with ErrUnavailable and a Register with a retriable error;
// then it starts the server again with start and waits until every
// registration, the one attempted while down included, resolves and the
// watch delivers them. Each adapter runs it on a private server of its
// kind (itest/servers.StartPrivate).
func ServerRestart(t *testing.T, r registries.Registry, kill, start func()) {
	t.Helper()
	svc := Unique("restart")
	var want []registries.Instance
	for _, id := range []string{"a", "b", "c"} {
		in := Inst(svc, id, 7000+len(want))
		want = append(want, in)
		register(t, r, in)
	}
	ResolvesTo(t, r, svc, want)
	ch, err := r.Watch(Ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	AwaitSet(t, ch, "before the restart", want)

	kill()
	Eventually(t, Patience, "the client sees the server down", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := r.Ping(ctx); !errors.Is(err, registries.ErrUnavailable) {
			return fmt.Errorf("ping: %v, want ErrUnavailable", err)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	late := Inst(svc, "late", 7009)
	if err := r.Register(ctx, late); !registries.Retriable(err) {
		t.Fatalf("register while the server is down: %v, want a retriable error", err)
	}
	want = append(want, late)
	start()

	ResolvesTo(t, r, svc, want)
	AwaitSet(t, ch, "the watch follows the restart", want)
}
