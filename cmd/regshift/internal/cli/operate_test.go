package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/server"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const planFile = "../../../../coordinator/testdata/plan.yaml"

var t0 = time.Date(2026, 11, 26, 9, 57, 0, 0, time.UTC)

// cannedRollouts are two rollouts of the real coordinator types: one in
// its second wave with a node that has not answered its activate, one
// switched back after a node failed.
func cannedRollouts(t *testing.T) []*coordinator.Rollout {
	t.Helper()
	p, err := coordinator.LoadPlan(planFile)
	if err != nil {
		t.Fatal(err)
	}
	p.Waves.Percentages = []int{100} // canary, then the rest: four waves
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f := func(v float64) *float64 { return &v }

	r, _, err := coordinator.NewRollout("ro-2026-11-26-consul", p, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	r.Phase, r.Wave, r.Now, r.SoakStarted = schema.PhaseRolling, 1, at(95), at(90)
	r.Registry = coordinator.RegistryReport{At: at(94), Reachable: true, Healthy: true, BridgeRunning: true, Parity: 1}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		switch n.ID {
		case "p1", "p2":
			n.Reached, n.Touched, n.ActiveAt, n.Health, n.HealthAt = schema.ReachedActive, true, at(40), schema.HealthPassing, at(93)
		case "p3":
			n.Reached, n.Touched = schema.ReachedInstalled, true
			cmd := coordinator.Command{ID: coordinator.CommandID(r.ID, n.ID, schema.CommandActivate), Node: n.ID,
				Kind: schema.CommandActivate, Interface: "consul"}
			n.Pending = &coordinator.Pending{Command: cmd, FirstSent: at(60), LastSent: at(90), Sends: 2}
		}
	}
	r.Decisions = append(r.Decisions,
		coordinator.Decision{At: at(5), Decision: "prepared", Check: "parity", Observed: f(1), Threshold: f(0.99)},
		coordinator.Decision{At: at(50), Decision: "wave-passed", Check: "healthy-ratio", Observed: f(1), Threshold: f(1),
			Nodes: []string{"p1"}, Detail: "wave 1 of 4 (provider), parity 1.000"})

	old, _, err := coordinator.NewRollout("ro-2026-11-20-consul", p, 2, t0.Add(-6*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	old.Phase, old.Now = schema.PhaseSwitchedBack, old.Created.Add(10*time.Minute)
	old.Nodes[0].Reached, old.Nodes[0].Touched, old.Nodes[0].Failure = schema.ReachedSwitchedBack, true, "ack failed: registry-unavailable"
	old.Decisions = append(old.Decisions,
		coordinator.Decision{At: old.Now.Add(-time.Minute), Decision: "node-failed", Check: "ack", Nodes: []string{"p1"},
			Detail: "ack failed: registry-unavailable"},
		coordinator.Decision{At: old.Now, Decision: "switched-back", Detail: "every touched node is back on zookeeper"})
	return []*coordinator.Rollout{&old, &r}
}

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
				s.Nodes[progress(n.Reached)]++
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

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestStatusAndNodesRendering(t *testing.T) {
	canned := cannedRollouts(t)
	srv := fakeAPI(t, func() []*coordinator.Rollout { return canned })
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"status", []string{"rollout", "status", "-id", "ro-2026-11-26-consul", "-api", srv.URL}},
		{"status-ended", []string{"rollout", "status", "-id", "ro-2026-11-20-consul", "-api", srv.URL + "/"}},
		{"status-list", []string{"rollout", "status", "-api", srv.URL}},
		{"nodes", []string{"nodes", "-api", srv.URL}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, _, err := run(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
		})
	}
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

// requestID is the id the command printed for what it published.
func requestID(t *testing.T, out string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if id, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "request id: "); ok {
			return id
		}
	}
	t.Fatalf("no request id in the output:\n%s", out)
	return ""
}

// TestRequestsReachTheRequestsTopic publishes every request kind with the
// command line to the real broker, reads each record back from the requests
// topic and decodes it with the coordinator's verifier: signed ones with a
// keyring holding the operator's key, unsigned ones only where unsigned
// requests are allowed.
func TestRequestsReachTheRequestsTopic(t *testing.T) {
	brokers := servers.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix = "clitest." + newRequestID()[4:] + "."
	tcfg.CommandPartitions, tcfg.RequestPartitions = 1, 1 // one partition: records come back in publishing order
	topics, err := events.Bootstrap(ctx, brokers, tcfg)
	if err != nil {
		t.Fatalf("bootstrap topics: %v", err)
	}
	t.Cleanup(func() { deleteTopics(brokers, topics) })

	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, _, err := events.WriteKeyPair(dir, "alice", priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	signedOnly, err := events.NewRequestVerifier(events.DefaultRequestVerifierConfig(), ring)
	if err != nil {
		t.Fatal(err)
	}
	vcfg := events.DefaultRequestVerifierConfig()
	vcfg.AllowUnsigned = true
	unsignedToo, err := events.NewRequestVerifier(vcfg, events.NewKeyring())
	if err != nil {
		t.Fatal(err)
	}
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topics.Requests, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = reader.Close() })

	const rollout = "ro-cli-test"
	plan, err := coordinator.LoadPlan(planFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		signed bool
		by     string
		check  func(schema.Request) bool
	}{
		{"create signed", []string{"rollout", "create", "-f", planFile, "-key", keyPath, "-reason", "move to consul"}, true, "alice",
			func(m schema.Request) bool {
				c, ok := m.(*schema.CreateRollout)
				return ok && c.Reason == "move to consul" && c.Plan.To.Package.Digest == plan.To.Package.Digest && len(c.Plan.Nodes) == len(plan.Nodes)
			}},
		{"pause signed", []string{"rollout", "pause", "-key", keyPath, "-by", "bob@ops", "-reason", "change freeze"}, true, "bob@ops",
			func(m schema.Request) bool { p, ok := m.(*schema.Pause); return ok && p.Reason == "change freeze" }},
		{"resume unsigned", []string{"rollout", "resume", "-by", "bob@ops"}, false, "bob@ops",
			func(m schema.Request) bool { _, ok := m.(*schema.Resume); return ok }},
		{"approve wave 2", []string{"rollout", "approve", "-wave", "2", "-key", keyPath}, true, "alice",
			func(m schema.Request) bool { a, ok := m.(*schema.Approve); return ok && a.Wave != nil && *a.Wave == 2 }},
		{"approve any wave unsigned", []string{"rollout", "approve", "-by", "carol"}, false, "carol",
			func(m schema.Request) bool { a, ok := m.(*schema.Approve); return ok && a.Wave == nil }},
		{"abort signed", []string{"rollout", "abort", "-key", keyPath, "-reason", "parity dropped"}, true, "alice",
			func(m schema.Request) bool { a, ok := m.(*schema.Abort); return ok && a.Reason == "parity dropped" }},
		{"finalize unsigned", []string{"rollout", "finalize", "-by", "carol"}, false, "carol",
			func(m schema.Request) bool { _, ok := m.(*schema.Finalize); return ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now().Add(-time.Second)
			args := append(tc.args, "-id", rollout, "-brokers", strings.Join(brokers, ","), "-prefix", tcfg.Prefix)
			out, stderr, err := run(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			id := requestID(t, out)
			rec, err := reader.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read back from %s: %v", topics.Requests, err)
			}
			if string(rec.Key) != rollout {
				t.Errorf("record key %q, want the rollout id %q", rec.Key, rollout)
			}
			v, refuse := unsignedToo, signedOnly
			if tc.signed {
				v, refuse = signedOnly, unsignedToo
			}
			d, err := v.Decode(rec)
			if err != nil {
				t.Fatalf("the coordinator's verifier refuses the record: %v", err)
			}
			req := d.Message.(schema.Request)
			h := req.Requested()
			switch {
			case d.Envelope.ID != id || h.RequestID != id:
				t.Errorf("ce_id %q, body request_id %q, printed %q", d.Envelope.ID, h.RequestID, id)
			case h.RolloutID != rollout || h.RequestedBy != tc.by:
				t.Errorf("rollout %q by %q, want %q by %q", h.RolloutID, h.RequestedBy, rollout, tc.by)
			case h.RequestedAt.Before(start.Truncate(time.Second)) || h.RequestedAt.After(time.Now()):
				t.Errorf("requested_at %s is not now", h.RequestedAt)
			case !tc.check(req):
				t.Errorf("decoded %#v", req)
			case !strings.Contains(out, "published "+req.MessageType()):
				t.Errorf("output does not name the type %s:\n%s", req.MessageType(), out)
			}
			// A signed record fails where its key is unknown; an unsigned one
			// where signatures are required.
			var rej *events.RejectError
			want := events.ReasonUnknownKey
			if !tc.signed {
				want = events.ReasonUnsigned
			}
			if _, err := refuse.Decode(rec); !errors.As(err, &rej) || rej.Reason != want {
				t.Errorf("the other verifier: %v, want a %s refusal", err, want)
			}
		})
	}
}

func TestRequestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rollout", "pause"}, 2, "-id is required"},
		{[]string{"rollout", "create", "-id", "ro-1"}, 2, "-f is required"},
		{[]string{"rollout", "approve", "-id", "ro-1", "-wave", "-1"}, 2, "waves count from 1"},
		{[]string{"rollout", "abort", "-id", "ro-1", "-key", "/nonexistent/alice.key"}, 1, "-key:"},
		{[]string{"rollout", "create", "-id", "ro-1", "-f", "/nonexistent/plan.yaml"}, 1, "invalid rollout plan"},
		{[]string{"rollout", "pause", "-id", "not a valid id", "-brokers", "127.0.0.1:1"}, 1, "rollout_id"},
		{[]string{"coordinator"}, 2, "-c is required"},
		{[]string{"coordinator", "-c", "/nonexistent/coordinator.yaml"}, 1, "invalid coordinator config"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, err := run(t, tc.args...)
			if ExitCode(err) != tc.code || !strings.Contains(err.Error()+stderr, tc.want) {
				t.Errorf("error %v (exit %d), want exit %d and %q", err, ExitCode(err), tc.code, tc.want)
			}
		})
	}
}

// TestOperateARealCoordinator runs `regshift coordinator` in the test on
// the real servers, creates a rollout with `rollout create` for nodes that
// have no agent, and follows it with `rollout status` and `nodes`: the
// first node's install goes unanswered, fails its wave, and the rollout
// switches back while the coordinator keeps re-sending the switch-back.
func TestOperateARealCoordinator(t *testing.T) {
	brokers := servers.RequireKafka(t)
	zk := servers.RequireZooKeeper(t)[0]
	consulAddr := servers.RequireConsul(t)
	dir := t.TempDir()
	for _, id := range []string{"coord", "ops"} {
		if _, _, err := run(t, "keys", "generate", "-id", id, "-out", filepath.Join(dir, id)); err != nil {
			t.Fatal(err)
		}
	}
	prefix := "clitest." + newRequestID()[4:] + "."
	api := "127.0.0.1:" + strconv.Itoa(servers.FreePort(t))
	cfg := "id: coord-cli\nbrokers: [" + strings.Join(brokers, ", ") + "]\ntopicPrefix: " + prefix +
		"\nsigningKey: coord/coord.key\noperatorKeysDir: ops\nlisten: " + api + "\ntick: 100ms\nregistryEvery: 200ms\ncommandPartitions: 2\n"
	if err := os.WriteFile(filepath.Join(dir, "coordinator.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(brokers, events.NewTopics(prefix)) })
	plan, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	// A ZooKeeper base path of its own: the bridge has nothing to mirror.
	plan = []byte(strings.NewReplacer("address: 127.0.0.1:2181", "address: "+zk+"/regshift-"+prefix[:len(prefix)-1],
		"address: 127.0.0.1:8500", "address: "+consulAddr, "ack_timeout_seconds: 30", "ack_timeout_seconds: 1").Replace(string(plan)))
	if err := os.WriteFile(filepath.Join(dir, "plan.yaml"), plan, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- (&CLI{Stdout: &logs, Stderr: &logs}).Run(ctx, []string{"coordinator", "-c", filepath.Join(dir, "coordinator.yaml")})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("coordinator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("coordinator did not stop within 30s of its context")
		}
		if t.Failed() {
			t.Logf("coordinator log:\n%s", logs.String())
		}
	}()
	itest.Eventually(t, time.Minute, "the coordinator leads", func() error {
		var h server.Health
		if err := newAPIClient("http://"+api).get(ctx, "/healthz", &h); err != nil {
			return err
		}
		if !h.Leader {
			return errors.New("standing by")
		}
		return nil
	})

	pub := []string{"-id", "ro-cli", "-brokers", strings.Join(brokers, ","), "-prefix", prefix, "-key", filepath.Join(dir, "ops", "ops.key")}
	if _, stderr, err := run(t, append([]string{"rollout", "create", "-f", filepath.Join(dir, "plan.yaml")}, pub...)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var status string
	itest.Eventually(t, time.Minute, "the rollout switching back", func() error {
		out, _, err := run(t, "rollout", "status", "-id", "ro-cli", "-api", "http://"+api)
		status = out
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "rollout ro-cli: switching-back") {
			return errors.New(strings.SplitN(out, "\n", 2)[0])
		}
		return nil
	})
	for _, want := range []string{"wave 1/6 provider [-] 0/1 switched back", "failure: install: no answer within 1s",
		"switch-back sent", "created ", "node-unknown  check ack-timeout; nodes p1"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	out, _, err := run(t, "nodes", "-api", "http://"+api)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "p1    ro-cli   1     provider") || !strings.Contains(out, "install: no answer within 1s  switch-back sent") {
		t.Errorf("nodes does not show p1's failure and pending switch-back:\n%s", out)
	}
}

// syncBuffer is a buffer the coordinator's goroutines may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func deleteTopics(brokers []string, topics events.Topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topics.Commands, topics.Events, topics.Requests, topics.State, topics.DLQ}})
}
