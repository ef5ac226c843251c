package life

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/regshift/regshift/registries"
)

func TestCloseCancelsWaitsAndRefusesLaterWork(t *testing.T) {
	g := New()
	var finished atomic.Bool
	release := make(chan struct{})
	if err := g.Go(func() {
		<-g.Context().Done() // cancelled by Close ...
		<-release            // ... which runs beforeWait before waiting
		finished.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	if !g.Close(func() { close(release) }) {
		t.Fatal("first Close reported already closed")
	}
	if !finished.Load() {
		t.Fatal("Close returned before its goroutine finished")
	}
	if g.Close(nil) {
		t.Fatal("second Close did something")
	}
	if err := g.Go(func() {}); !errors.Is(err, registries.ErrClosed) || !g.Closed() {
		t.Fatalf("Go after Close: %v, want ErrClosed", err)
	}
}
