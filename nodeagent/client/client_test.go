package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/nodeagent/client"
)

// serve runs the agent's API on a listener of kind "tcp" or "unix".
func serve(t *testing.T, kind string, hub *nodeagent.Hub, st agentapi.Status) *client.Client {
	t.Helper()
	addr := "127.0.0.1:0"
	if kind == "unix" {
		addr = "unix:" + filepath.Join(t.TempDir(), "agent.sock")
	}
	l, err := nodeagent.ListenAPI(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: nodeagent.NewAPIHandler(hub, func() agentapi.Status { return st }, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	if kind == "tcp" {
		addr = l.Addr().String()
	}
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveWatchStatus(t *testing.T) {
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			hub := nodeagent.NewHub()
			hub.Set(agentapi.Resolution{Service: "payments", Via: "zookeeper",
				Endpoints: []agentapi.Endpoint{{ID: "p1", Address: "127.0.0.1", Port: 9001}}})
			st := agentapi.Status{Node: "n1", Role: string(nodeagent.RoleConsumer), Primary: "zookeeper",
				Registrations: []agentapi.Registration{{Interface: "zookeeper", Service: "orders", ID: "o1", Registered: true}}}
			c := serve(t, kind, hub, st)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			res, err := c.Resolve(ctx, "payments")
			if err != nil || res.Via != "zookeeper" || len(res.Endpoints) != 1 || res.Endpoints[0].Port != 9001 || res.Index == 0 {
				t.Fatalf("resolve: %+v %v", res, err)
			}
			if _, err := c.Resolve(ctx, "unknown"); !errors.Is(err, client.ErrNotConsumed) {
				t.Fatalf("unknown service: %v", err)
			}

			// A watch at the current index returns unchanged after its wait...
			same, err := c.Watch(ctx, "payments", res.Index, 50*time.Millisecond)
			if err != nil || same.Index != res.Index {
				t.Fatalf("idle watch: %+v %v", same, err)
			}
			// ...and at once with the new answer when the service changes.
			got := make(chan agentapi.Resolution, 1)
			go func() {
				r, err := c.Watch(ctx, "payments", res.Index, time.Minute)
				if err != nil {
					t.Error(err)
				}
				got <- r
			}()
			hub.Set(agentapi.Resolution{Service: "payments", Via: "consul", FellBack: false,
				Endpoints: []agentapi.Endpoint{{ID: "p1", Address: "127.0.0.1", Port: 9001}, {ID: "p2", Address: "127.0.0.1", Port: 9002}}})
			select {
			case r := <-got:
				if r.Via != "consul" || len(r.Endpoints) != 2 || r.Index <= res.Index {
					t.Fatalf("watch woke with %+v", r)
				}
			case <-ctx.Done():
				t.Fatal("watch did not return after the change")
			}

			status, err := c.Status(ctx)
			if err != nil || status.Node != "n1" || status.Primary != "zookeeper" {
				t.Fatalf("status: %+v %v", status, err)
			}
			regs, err := c.Registrations(ctx)
			if err != nil || len(regs) != 1 || regs[0].ID != "o1" {
				t.Fatalf("registrations: %+v %v", regs, err)
			}
		})
	}
}

func TestHubIgnoresSameAnswer(t *testing.T) {
	hub := nodeagent.NewHub()
	r := agentapi.Resolution{Service: "s", Via: "zk", Endpoints: []agentapi.Endpoint{{ID: "a", Port: 1}}}
	hub.Set(r)
	hub.Set(r)
	got, _ := hub.Get("s")
	if got.Index != 1 {
		t.Fatalf("index %d after setting the same answer twice", got.Index)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:80", "unix:relative.sock", "nonsense"} {
		if l, err := nodeagent.ListenAPI(addr); err == nil {
			l.Close()
			t.Errorf("listened on %s", addr)
		}
	}
}
