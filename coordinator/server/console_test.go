package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// openStream reads GET /v1/stream[?rollout=] into a channel of events
// until the test ends.
func openStream(t *testing.T, api, rollout string) <-chan sseEvent {
	t.Helper()
	url := api + "/v1/stream"
	if rollout != "" {
		url += "?rollout=" + rollout
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: %s, %s", resp.Status, ct)
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = []byte(strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return out
}

// next waits for the next event named one of names, passing over others;
// it fails the test after a minute.
func next(t *testing.T, events <-chan sseEvent, names ...string) sseEvent {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %v", names)
			}
			for _, n := range names {
				if ev.name == n {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within a minute", names)
		}
	}
}

// consoleRequest is what the page posts to POST /v1/requests for a request
// signed by s: the record's attributes and its body.
func consoleRequest(t *testing.T, s *events.Signer, typ string, body any) map[string]string {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	h := body.(map[string]any)
	sig := s.Sign(typ, data)
	return map[string]string{"ce_id": h["request_id"].(string), "ce_type": typ, "ce_source": "regshift/console", "ce_time": time.Now().UTC().Format(time.RFC3339Nano),
		"partitionkey": h["rollout_id"].(string), "ce_keyid": s.KeyID, "ce_signature": base64.StdEncoding.EncodeToString(sig), "data": string(data)}
}

func pauseBody(rollout, by string) map[string]any {
	return map[string]any{"request_id": fmt.Sprintf("req-%x", time.Now().UnixNano()), "requested_at": time.Now().UTC().Format(time.RFC3339),
		"rollout_id": rollout, "requested_by": by, "reason": "seen on the console, café"}
}

func postRelay(t *testing.T, api string, v any) (int, map[string]string) {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(api+"/v1/requests", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// TestConsoleRelaysOnlyWhatVerifies: the console's POST /v1/requests puts
// a request signed by an operator key on the requests topic unchanged, and
// the coordinator acts on it as on any other (the pause takes effect, and
// names the key). A forged signature, a key whose role may not pause, a
// create-rollout and an oversized body are refused with their reason and
// never reach the topic: no dead letter, no change to the rollout.
func TestConsoleRelaysOnlyWhatVerifies(t *testing.T) {
	ctx := t.Context()
	brokers := fakeBroker(t)
	ops := operatorKeys(t, map[string]events.Role{"root": events.RoleAdmin, "ops": events.RoleOperate, "viewer": ""})
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.OperatorKeysDir = brokers, ops.dir
	api := serveLeading(ctx, t, cfg, memoryRegistries())
	ops.requester(t, ctx, brokers, "root").create("ro-console", idlePlan(t))
	awaitRollout(t, api, "ro-console", "created", func(*coordinator.Rollout) bool { return true })
	stream := openStream(t, api, "ro-console")
	next(t, stream, "snapshot")

	forged := consoleRequest(t, ops.keys["ops"], schema.TypePause, pauseBody("ro-console", "ops"))
	forged["data"] = strings.Replace(forged["data"], "café", "cafe", 1) // the body changed after signing
	viewer := consoleRequest(t, ops.keys["viewer"], schema.TypePause, pauseBody("ro-console", "viewer"))
	create := consoleRequest(t, ops.keys["root"], schema.TypeCreateRollout, pauseBody("ro-other", "root"))
	for _, c := range []struct {
		name   string
		req    any
		code   int
		reason string
	}{
		{"forged", forged, http.StatusForbidden, string(events.ReasonBadSignature)},
		{"observe role", viewer, http.StatusForbidden, string(events.ReasonForbidden)},
		{"create-rollout", create, http.StatusBadRequest, "not-steering"},
		{"unsigned", map[string]string{"ce_type": schema.TypePause, "data": "{}"}, http.StatusBadRequest, string(events.ReasonUnsigned)},
		{"unknown field", map[string]string{"ce_type": schema.TypePause, "extra": "x"}, http.StatusBadRequest, "malformed"},
		{"too large", map[string]string{"data": strings.Repeat("x", 20<<10)}, http.StatusRequestEntityTooLarge, "too-large"},
	} {
		code, out := postRelay(t, api, c.req)
		if code != c.code || out["reason"] != c.reason {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, out, c.code, c.reason)
		}
	}
	if r := rollout(t, api, "ro-console"); r.Paused {
		t.Fatal("a refused request paused the rollout")
	}

	code, out := postRelay(t, api, consoleRequest(t, ops.keys["ops"], schema.TypePause, pauseBody("ro-console", "ops")))
	if code != http.StatusAccepted || out["relayed"] != "pause" {
		t.Fatalf("a signed pause: %d %v", code, out)
	}
	// The stream shows it: a head that is paused, with the decision naming
	// the key (the page's "see it take effect").
	for {
		ev := next(t, stream, "head")
		var h struct {
			Paused    bool                   `json:"paused"`
			Decisions []coordinator.Decision `json:"decisions"`
		}
		if err := json.Unmarshal(ev.data, &h); err != nil {
			t.Fatal(err)
		}
		if h.Paused {
			last := h.Decisions[len(h.Decisions)-1]
			if last.Decision != schema.DecisionPaused || !strings.Contains(last.Detail, "ops") {
				t.Fatalf("the last decision: %+v", last)
			}
			break
		}
	}
	if n := metric(t, api, `regshift_events_dead_letters_total{reason="bad-signature",topic="regshift.requests"}`); n != 0 {
		t.Fatalf("%v forged requests reached the requests topic", n)
	}
	for _, s := range []string{`regshift_coordinator_console_requests_total{outcome="relayed"} 1`, `regshift_coordinator_console_requests_total{outcome="bad-signature"} 1`} {
		k, v, _ := strings.Cut(s, "} ")
		if got := metric(t, api, k+"}"); fmt.Sprint(got) != v {
			t.Errorf("%s}: %v", k, got)
		}
	}
}

// TestStreamSendsWhatChanged: a page following a rollout reads its whole
// state once (a snapshot: head and every node), then only changes — the
// node rows that changed, a head when it changed — and never another
// snapshot while the rollout goes on. The replica's status comes first.
func TestStreamSendsWhatChanged(t *testing.T) {
	env := newStateEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	nodes := []string{"p1", "p2", "p3"}
	for _, n := range nodes {
		env.agent(ctx, t, n)
	}
	env.cfg.AcceptUnsigned = true
	api := serveLeading(ctx, t, env.cfg, env.open)
	stream := openStream(t, api, "ro-stream")
	var st server.Health
	if err := json.Unmarshal(next(t, stream, "status").data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Replica == "" {
		t.Fatalf("status: %+v", st)
	}
	if ev := next(t, stream, "missing", "snapshot"); ev.name != "missing" {
		t.Fatalf("before the rollout exists: %s", ev.name)
	}
	plan := planFor(t, nodes...)
	plan.Waves.MaxInFlight = 1
	env.plant(t, nil, &schema.CreateRollout{RequestHeader: schema.RequestHeader{RequestID: "req-stream", RolloutID: "ro-stream",
		RequestedBy: "test", RequestedAt: time.Now().UTC()}, Plan: plan})
	var snap struct {
		Head  json.RawMessage `json:"head"`
		Nodes [][]any         `json:"nodes"`
	}
	if err := json.Unmarshal(next(t, stream, "snapshot").data, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Nodes) != len(nodes) || snap.Nodes[0][0] != "p1" {
		t.Fatalf("snapshot nodes: %v", snap.Nodes)
	}
	// Every node goes to active, told in rows of the nodes that changed,
	// until the rollout commits; no snapshot comes again.
	active := map[float64]bool{}
	for i, r := range snap.Nodes { // the first view may show the rollout a step on already
		if r[3] == "active" {
			active[float64(i)] = true
		}
	}
	for {
		ev := next(t, stream, "nodes", "head", "snapshot")
		if ev.name == "snapshot" {
			t.Fatal("a second snapshot while the rollout runs: the stream sent the whole state again")
		}
		if ev.name == "head" {
			if strings.Contains(string(ev.data), `"phase":"committed"`) {
				break
			}
			continue
		}
		var rows [][]any
		if err := json.Unmarshal(ev.data, &rows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r[4] == "active" {
				active[r[0].(float64)] = true
			}
		}
	}
	if len(active) != len(nodes) {
		t.Fatalf("committed, but the stream showed %d of %d nodes active", len(active), len(nodes))
	}
	// A change of the head alone (a request, refused or not: a decision)
	// sends a head and no node rows.
	env.plant(t, nil, &schema.Pause{RequestHeader: schema.RequestHeader{RequestID: "req-stream-pause", RolloutID: "ro-stream",
		RequestedBy: "test", RequestedAt: time.Now().UTC()}})
	for {
		ev := next(t, stream, "nodes", "head", "snapshot")
		if ev.name != "head" {
			t.Fatalf("a %s event after a request that moved no node: %s", ev.name, ev.data)
		}
		if strings.Contains(string(ev.data), "req-stream-pause") || strings.Contains(string(ev.data), `"decision":"request-refused"`) ||
			strings.Contains(string(ev.data), `"paused":true`) {
			break
		}
	}
}

// TestConsoleIsServed: the page and its files come from the binary, with a
// policy that keeps them to their own origin.
func TestConsoleIsServed(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Brokers, cfg.AcceptUnsigned = fakeBroker(t), true
	api := serveLeading(t.Context(), t, cfg, memoryRegistries())
	for path, want := range map[string]string{"/": "text/html", "/console/app.js": "text/javascript", "/console/sign.js": "text/javascript",
		"/console/style.css": "text/css"} {
		resp, err := http.Get(api + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(b) < 100 {
			t.Errorf("GET %s: %s %q, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "http") {
			t.Errorf("GET %s: policy %q", path, csp)
		}
	}
	if resp, err := http.Get(api + "/console/nothing.js"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a missing file: %v %v", resp.Status, err)
	}
}
