package nodeagent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// continuity watches one registration in a registry and records every gap
// (from the first poll that missed it to the next that saw it) after it
// first appeared.
type continuity struct {
	mu      sync.Mutex
	seen    bool
	missing time.Time // start of the current gap, zero when present
	gaps    []time.Duration
	stop    func()
}

func watchContinuity(t *testing.T, r registries.Registry, service, id string) *continuity {
	c := &continuity{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			got, err := r.Resolve(ctx, service)
			if err == nil {
				present := slices.ContainsFunc(got, func(i registries.Instance) bool { return i.ID == id })
				c.mu.Lock()
				switch {
				case present && !c.missing.IsZero():
					c.gaps = append(c.gaps, time.Since(c.missing))
					c.missing = time.Time{}
				case present:
					c.seen = true
				case c.seen && c.missing.IsZero():
					c.missing = time.Now()
				}
				c.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	c.stop = func() { cancel(); <-done }
	t.Cleanup(c.stop)
	return c
}

// check fails unless the registration was there, is there, and every gap
// closed within max. ZooKeeper cannot hand an ephemeral node from a killed
// session to a new one: the restarted agent replaces it (delete, create), as
// Curator does, which consumers may see as a blink of a few milliseconds.
func (c *continuity) check(t *testing.T, what string, max time.Duration) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen || !c.missing.IsZero() {
		t.Fatalf("%s: seen=%v, missing since %v", what, c.seen, c.missing)
	}
	for _, g := range c.gaps {
		if g > max {
			t.Fatalf("%s: missing for %s (gaps %v)", what, g, c.gaps)
		}
	}
	t.Logf("%s: %d gaps %v", what, len(c.gaps), c.gaps)
}

// slowPackages serves one package; the first request is held until release,
// so a test can kill the agent in the middle of an install.
func slowPackages(t *testing.T, file string) (url string, hit <-chan struct{}, release func()) {
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hitCh, rel := make(chan struct{}), make(chan struct{})
	var once, relOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true; close(hitCh) })
		if first {
			select {
			case <-rel:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(body)
	}))
	release = func() { relOnce.Do(func() { close(rel) }) }
	t.Cleanup(func() { release(); srv.Close() })
	return srv.URL + "/consul.tgz", hitCh, release
}

// TestAgentKilledMidCommand kills `regshift agent` with SIGKILL while it
// fetches a package and right after an activate, restarts it each time, and
// checks that the host converges — acked, registered in both registries —
// and that its ZooKeeper registration never went missing, also after the
// killed processes' sessions expired.
func TestAgentKilledMidCommand(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	p := env.StartAgentProcess(t, itest.Provider("node-k", ordersSvc))
	orders := p.ServiceID(ordersSvc)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	zk := watchContinuity(t, env.Registry("zookeeper"), ordersSvc, orders)

	fileURL, digest := env.ConsulPackage(t)
	url, hit, release := slowPackages(t, fileURL[len("file://"):])

	env.Send(t, env.Install(p.Node, "k1", "consul", url, digest))
	select {
	case <-hit:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent never fetched the package")
	}
	firstKill := time.Now()
	p.Kill(t) // mid-install: the package is half-fetched
	release()
	if n := len(env.Acks(p.Node, "k1")); n != 0 {
		t.Fatalf("the killed agent acked the install %d times", n)
	}
	p.Start(t)
	if ack := env.AwaitAck(t, p.Node, "k1"); ack.Outcome != schema.AckDone {
		t.Fatalf("install after restart: %+v", ack)
	}
	stale, _ := filepath.Glob(filepath.Join(p.Config.StateDir, "interfaces", "*", ".*"))
	if len(stale) != 0 {
		t.Fatalf("the interrupted install left %v", stale)
	}

	env.Send(t, env.Activate(p.Node, "k2", "consul"))
	p.Kill(t) // right after the activate went out: before, during or after it ran
	p.Start(t)
	if ack := env.AwaitAck(t, p.Node, "k2"); ack.Outcome != schema.AckDone {
		t.Fatalf("activate after restart: %+v", ack)
	}
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	st, err := p.Client(t).Status(context.Background())
	if err != nil || st.Primary != "consul" || st.Fallback != "zookeeper" {
		t.Fatalf("status after restarts: %+v %v", st, err)
	}

	// The killed processes' ZooKeeper sessions expire (10s): their ephemeral
	// nodes go, and the live agent's registration must still be there.
	itest.Eventually(t, 60*time.Second, "killed sessions expired", func() error {
		if time.Since(firstKill) < 13*time.Second {
			return fmt.Errorf("%s since the first kill", time.Since(firstKill).Round(time.Second))
		}
		return nil
	})
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	zk.check(t, "orders in ZooKeeper throughout", time.Second)
}
