package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// fakeAPI serves the coordinator's read API from rollouts, as api.go shapes it.
func fakeAPI(t *testing.T, rollouts func() []*coordinator.Rollout) *httptest.Server {
	t.Helper()
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Error(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, _ *http.Request) {
		out := []server.Summary{}
		for _, r := range rollouts() {
			s := server.Summary{ID: r.ID, Phase: r.Phase, Paused: r.Paused, Held: r.Held, Wave: r.Wave + 1, Waves: len(r.Waves),
				Nodes: map[string]int{}, Decision: &r.Decisions[len(r.Decisions)-1]}
			for _, n := range r.Nodes {
				s.Nodes[coordinator.ProgressName(n.Reached)]++
			}
			out = append(out, s)
		}
		write(w, out)
	})
	mux.HandleFunc("GET /v1/rollouts/{id}", func(w http.ResponseWriter, req *http.Request) {
		for _, r := range rollouts() {
			if r.ID == req.PathValue("id") {
				write(w, r)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		write(w, map[string]string{"error": "no rollout " + req.PathValue("id")})
	})
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		out := []server.NodeView{}
		for _, r := range rollouts() {
			for i := range r.Nodes {
				out = append(out, server.NodeView{Rollout: r.ID, Node: &r.Nodes[i]})
			}
		}
		write(w, out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestStatusErrors(t *testing.T) {
	srv := fakeAPI(t, func() []*coordinator.Rollout { return nil })
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rollout", "status", "-id", "nope", "-api", srv.URL}, 1, "404 Not Found: no rollout nope"},
		{[]string{"rollout", "status", "-api", "http://" + servers.ClosedAddr(t)}, 1, "coordinator API:"},
		{[]string{"rollout", "status", "-interval", "0s"}, 2, "-interval 0s must be positive"},
		{[]string{"nodes", "extra"}, 2, "unexpected arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := run(t, tc.args...)
			if ExitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (exit %d), want exit %d and %q", err, ExitCode(err), tc.code, tc.want)
			}
		})
	}
	out, _, err := run(t, "nodes", "-api", srv.URL)
	if err != nil || !strings.Contains(out, "no nodes") {
		t.Errorf("nodes of no rollout: %q %v", out, err)
	}
}

func TestWatchRedrawsUntilTheRolloutEnds(t *testing.T) {
	canned := cannedRollouts(t)
	live := canned[1]
	var gets atomic.Int32
	srv := fakeAPI(t, func() []*coordinator.Rollout {
		// The third look finds the rollout finalized.
		if gets.Add(1) >= 3 {
			done := live.Clone()
			done.Phase = schema.PhaseFinalized
			for i := range done.Nodes {
				n := &done.Nodes[i]
				n.Reached, n.Pending = schema.ReachedUninstalled, nil
			}
			return []*coordinator.Rollout{&done}
		}
		return []*coordinator.Rollout{live}
	})
	out, _, err := run(t, "rollout", "status", "-id", live.ID, "-api", srv.URL, "-watch", "-interval", "1ms")
	if err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(out, clearScreen)[1:]
	if len(frames) != 3 || strings.Count(out, clearScreen) != 3 {
		t.Fatalf("%d frames, want 3 (two rolling, one finalized):\n%q", len(frames), out)
	}
	for i, want := range []string{"wave 2/4 provider [#-] 1/2 active, current: soaking since", "wave 2/4 provider [#-] 1/2 active, current", "wave 2/4 provider [##] 2/2 uninstalled\n"} {
		if !strings.Contains(frames[i], want) || !strings.HasPrefix(frames[i], "every 1ms, Ctrl-C to stop\n") {
			t.Errorf("frame %d lacks %q:\n%s", i+1, want, frames[i])
		}
	}
	if !strings.Contains(frames[2], "rollout ro-2026-11-26-consul: finalized") {
		t.Errorf("last frame is not the finalized rollout:\n%s", frames[2])
	}
}

func TestWatchStopsOnInterruptAndShowsErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var gets atomic.Int32
	srv := fakeAPI(t, func() []*coordinator.Rollout {
		if gets.Add(1) == 3 {
			cancel() // Ctrl-C during the third look
		}
		return nil
	})
	var o strings.Builder
	err := (&CLI{Stdout: &o, Stderr: &o}).Run(ctx, []string{"rollout", "status", "-id", "gone", "-api", srv.URL, "-watch", "-interval", "1ms"})
	if err != nil {
		t.Fatalf("an interrupted watch returned %v, want nil", err)
	}
	frames := strings.Split(o.String(), clearScreen)[1:]
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2 before the interrupt:\n%q", len(frames), o.String())
	}
	for _, f := range frames {
		if !strings.Contains(f, "error: GET "+srv.URL+"/v1/rollouts/gone: 404 Not Found: no rollout gone (retrying every 1ms)") {
			t.Errorf("frame does not show the error:\n%s", f)
		}
	}
}
