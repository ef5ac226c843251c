package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// The console's live stream (GET /v1/stream, server-sent events). The
// owner loop already publishes an immutable view at most every viewEvery;
// after each it wakes the hub, which diffs the new view against the last
// one it saw and sends each subscriber only what changed: the summaries of
// the rollouts that moved, and for a subscriber that follows one rollout
// its head when it changed and the rows of the nodes that changed. A page
// reads the whole state once, when it connects (or reconnects), never
// again. The diff runs on the hub's goroutine, not the owner's.
//
// Bounds: a subscriber's queue holds streamQueue messages; one that falls
// further behind is dropped (its browser reconnects and starts from a
// fresh snapshot), so a slow page never holds the hub or the owner. At most
// maxStreams subscribers at once. Per rollout the hub keeps at most
// maxSeries chart points (halved, every other one kept, when full: the
// whole life at a coarser step) and maxPhaseMarks phase changes.

const (
	streamQueue   = 256
	maxStreams    = 256
	maxSeries     = 720
	maxPhaseMarks = 32
	keepAlive     = 15 * time.Second
)

// streamMsg is one server-sent event, encoded.
type streamMsg []byte

func sse(event string, v any) streamMsg {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + len(event) + 16)
	fmt.Fprintf(&buf, "event: %s\ndata: ", event)
	buf.Write(b)
	buf.WriteString("\n\n")
	return buf.Bytes()
}

// subscriber is one open stream.
type subscriber struct {
	rollout string // followed, or "" for the list only
	ch      chan streamMsg
	dropped chan struct{} // closed when the hub dropped it
	// base is the view the hub had when it registered the subscriber: the
	// snapshot is built from it, every later message is a diff from it.
	base     *view
	baseHist *history
	status   *Health
}

// point is one sample of a rollout's chart: the registry's parity and
// reachability and the share of moved nodes healthy.
type point struct {
	At        time.Time `json:"t"`
	Parity    *float64  `json:"parity,omitempty"` // set once the bridge converged
	Reachable bool      `json:"reachable"`
	Healthy   *float64  `json:"healthy,omitempty"` // healthy share of the active nodes
}

// history is what the hub remembers of a rollout's life (this replica
// only: a new leader's chart starts when it takes over).
type history struct {
	series []point
	phases []phaseMark
	head   []byte // the last head sent, to send a head only when it changed
}

type hub struct {
	s      *Server
	wake   chan struct{}
	closed chan struct{} // closed when the server shuts down: every stream ends
	once   sync.Once
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	cur    *view
	status *Health
	hist   map[string]*history
}

func newHub(s *Server) *hub {
	return &hub{s: s, wake: make(chan struct{}, 1), closed: make(chan struct{}), subs: map[*subscriber]struct{}{}, hist: map[string]*history{}}
}

// closeStreams ends every stream, now and to come.
func (h *hub) closeStreams() { h.once.Do(func() { close(h.closed) }) }

// poke tells the hub a new view or status was published; it never blocks.
func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run diffs every new view until done closes.
func (h *hub) run(done <-chan struct{}) {
	h.update()
	for {
		select {
		case <-done:
			return
		case <-h.wake:
			h.update()
		}
	}
}

// update diffs the published view and status against the last seen and
// sends what changed.
func (h *hub) update() {
	next, status := h.s.view.Load(), h.s.status.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.cur
	if status != h.status {
		h.status = status
		h.broadcast("", sse("status", status))
	}
	if next == prev {
		return
	}
	h.cur = next
	for _, id := range next.ids {
		rv := next.rollouts[id]
		var old *rolloutView
		if prev != nil {
			old = prev.rollouts[id]
		}
		if old == rv {
			continue
		}
		hist := h.record(id, rv)
		h.broadcast("", sse("summary", rv.summary))
		if !h.following(id) {
			continue
		}
		hd, _ := json.Marshal(head(&rv.rollout, rv.summary, hist.phases))
		if !bytes.Equal(hd, hist.head) {
			hist.head = hd
			h.broadcast(id, sse("head", json.RawMessage(hd)))
		}
		if n := len(hist.series); n > 0 {
			h.broadcast(id, sse("point", hist.series[n-1]))
		}
		if old == nil || len(old.rollout.Nodes) != len(rv.rollout.Nodes) {
			h.broadcast(id, sse("snapshot", snapshot(rv, hist)))
			continue
		}
		var rows [][]any
		for i := range rv.rollout.Nodes {
			if !sameNode(&old.rollout.Nodes[i], &rv.rollout.Nodes[i]) {
				rows = append(rows, append([]any{i}, conNode(&rv.rollout.Nodes[i])...))
			}
		}
		if len(rows) > 0 {
			h.broadcast(id, sse("nodes", rows))
		}
	}
	if prev != nil {
		for id := range prev.rollouts {
			if _, ok := next.rollouts[id]; !ok {
				delete(h.hist, id)
			}
		}
	}
}

// record adds the rollout's phase change and chart point to its history.
func (h *hub) record(id string, rv *rolloutView) *history {
	hist := h.hist[id]
	if hist == nil {
		hist = &history{}
		h.hist[id] = hist
	}
	r := &rv.rollout
	if n := len(hist.phases); n == 0 || hist.phases[n-1].Phase != r.Phase {
		at := r.Now
		if n == 0 {
			at = r.Created
		}
		hist.phases = append(hist.phases, phaseMark{Phase: r.Phase, At: at})
		if len(hist.phases) > maxPhaseMarks {
			hist.phases = append(hist.phases[:1], hist.phases[len(hist.phases)-maxPhaseMarks+1:]...)
		}
	}
	rep := r.Registry
	if rep.At.IsZero() || len(hist.series) > 0 && !rep.At.After(hist.series[len(hist.series)-1].At) {
		return hist
	}
	p := point{At: rep.At, Reachable: rep.Reachable}
	if rep.BridgeConverged {
		v := rep.Parity
		p.Parity = &v
	}
	if v, ok := activeHealthy(r); ok {
		p.Healthy = &v
	}
	if len(hist.series) >= maxSeries {
		kept := hist.series[:0]
		for i := 0; i < len(hist.series); i += 2 {
			kept = append(kept, hist.series[i])
		}
		hist.series = kept
	}
	hist.series = append(hist.series, p)
	return hist
}

// following reports whether a subscriber follows rollout id.
func (h *hub) following(id string) bool {
	for s := range h.subs {
		if s.rollout == id {
			return true
		}
	}
	return false
}

// broadcast queues m for every subscriber of rollout ("" for every one),
// dropping those whose queue is full.
func (h *hub) broadcast(rollout string, m streamMsg) {
	for s := range h.subs {
		if rollout != "" && s.rollout != rollout {
			continue
		}
		select {
		case s.ch <- m:
		default:
			h.drop(s)
		}
	}
}

func (h *hub) drop(s *subscriber) {
	delete(h.subs, s)
	close(s.dropped)
	h.s.m.streamsDropped.Inc()
}

// subscribe registers a stream; it fails when maxStreams are open.
func (h *hub) subscribe(rollout string) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxStreams {
		return nil, fmt.Errorf("%d console streams are open already", maxStreams)
	}
	if h.cur == nil {
		h.cur = h.s.view.Load()
	}
	if h.status == nil {
		h.status = h.s.status.Load()
	}
	s := &subscriber{rollout: rollout, ch: make(chan streamMsg, streamQueue), dropped: make(chan struct{}), base: h.cur, status: h.status}
	if rollout != "" {
		if rv, ok := h.cur.rollouts[rollout]; ok {
			hist := h.record(rollout, rv)
			// The snapshot carries the head; later heads are diffed from it.
			hist.head, _ = json.Marshal(head(&rv.rollout, rv.summary, hist.phases))
			c := *hist
			c.series = append([]point(nil), hist.series...)
			c.phases = append([]phaseMark(nil), hist.phases...)
			s.baseHist = &c
		}
	}
	h.subs[s] = struct{}{}
	h.s.m.streams.Set(float64(len(h.subs)))
	return s, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
	h.s.m.streams.Set(float64(len(h.subs)))
}

// conSnapshot is a followed rollout as a page first draws it.
type conSnapshot struct {
	Head   json.RawMessage `json:"head"`
	Nodes  [][]any         `json:"nodes"` // conNode rows in plan order
	Series []point         `json:"series"`
}

func snapshot(rv *rolloutView, hist *history) conSnapshot {
	nodes := make([][]any, len(rv.rollout.Nodes))
	for i := range rv.rollout.Nodes {
		nodes[i] = conNode(&rv.rollout.Nodes[i])
	}
	hd := hist.head
	if hd == nil {
		hd, _ = json.Marshal(head(&rv.rollout, rv.summary, hist.phases))
	}
	return conSnapshot{Head: hd, Nodes: nodes, Series: hist.series}
}

// serveStream is GET /v1/stream[?rollout=ID]: a status event (this
// replica, whether it leads, and the leader it knows of), the rollouts'
// summaries, with a rollout its snapshot (or a "missing" event), then
// changes as they happen.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	rollout := r.URL.Query().Get("rollout")
	if len(rollout) > 256 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "rollout: longer than 256 bytes"})
		return
	}
	sub, err := s.hub.subscribe(rollout)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	defer s.hub.unsubscribe(sub)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(m streamMsg) bool {
		if _, err := w.Write(m); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// retry: how soon a browser reconnects after the stream ends.
	if !write([]byte("retry: 2000\n\n")) || !write(sse("status", sub.status)) {
		return
	}
	list := make([]Summary, 0, len(sub.base.ids)+len(sub.base.quarantine))
	for _, id := range sub.base.ids {
		list = append(list, sub.base.rollouts[id].summary)
	}
	if !write(sse("rollouts", append(list, sub.base.quarantine...))) {
		return
	}
	if rollout != "" {
		rv, ok := sub.base.rollouts[rollout]
		var m streamMsg
		switch q, quarantined := sub.base.quarantined[rollout]; {
		case ok:
			m = sse("snapshot", snapshot(rv, sub.baseHist))
		case quarantined:
			m = sse("missing", map[string]string{"error": "rollout " + q.ID + " is quarantined: " + q.Quarantined})
		default:
			m = sse("missing", map[string]string{"error": "this replica holds no rollout of that id"})
		}
		if !write(m) {
			return
		}
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.closed:
			return
		case <-sub.dropped:
			return // fell behind: the browser reconnects and starts afresh
		case m := <-sub.ch:
			if !write(m) {
				return
			}
		case <-ping.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// seriesOf is a rollout's chart, for GET /v1/rollouts/{id}/series.
func (h *hub) seriesOf(id string) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hist, ok := h.hist[id]; ok {
		return append([]point(nil), hist.series...)
	}
	return []point{}
}

// activeHealthy is the share of a rollout's active nodes that are healthy;
// false when none is active.
func activeHealthy(r *coordinator.Rollout) (float64, bool) {
	active, healthy := 0, 0
	for i := range r.Nodes {
		if n := &r.Nodes[i]; n.Reached == schema.ReachedActive {
			active++
			if n.Healthy() {
				healthy++
			}
		}
	}
	if active == 0 {
		return 0, false
	}
	return float64(healthy) / float64(active), true
}
