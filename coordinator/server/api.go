package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// Summary is one rollout in the list.
type Summary struct {
	ID       string                `json:"id"`
	Phase    coordinator.Phase     `json:"phase"`
	Paused   bool                  `json:"paused"`
	Held     bool                  `json:"held"`
	Wave     int                   `json:"wave"` // 1-based
	Waves    int                   `json:"waves"`
	Nodes    map[string]int        `json:"nodes"` // by progress
	Decision *coordinator.Decision `json:"last_decision,omitempty"`
	Created  time.Time             `json:"created,omitzero"`
	// Quarantined, when set, says why the leader refused the rollout's
	// records on replay: it is not run and its nodes are not commanded.
	Quarantined string `json:"quarantined,omitempty"`
}

// NodeView is one node as the API shows it.
type NodeView struct {
	Rollout string `json:"rollout"`
	*coordinator.Node
}

// Health is /healthz: whether this replica leads, and its epoch; and the
// latest epoch claim it read on the state topic (signed by a coordinator
// key): which replica leads, as far as this one knows — what a standby's
// console says.
type Health struct {
	Replica string `json:"replica"`
	Leader  bool   `json:"leader"`
	Epoch   uint64 `json:"epoch"`
	// LeaderReplica, LeaderEpoch and LeaderSince are the latest claim.
	LeaderReplica string    `json:"leader_replica,omitempty"`
	LeaderEpoch   uint64    `json:"leader_epoch,omitempty"`
	LeaderSince   time.Time `json:"leader_since,omitzero"`
}

func summarize(r *coordinator.Rollout) Summary {
	s := Summary{ID: r.ID, Phase: r.Phase, Paused: r.Paused, Held: r.Held, Wave: r.Wave + 1, Waves: len(r.Waves), Nodes: map[string]int{},
		Created: r.Created}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		k := string(n.Reached)
		if n.Reached == schema.ReachedNone {
			k = "none"
		}
		if n.Failure != "" {
			k = "failed"
		}
		s.Nodes[k]++
	}
	if len(r.Decisions) > 0 {
		d := r.Decisions[len(r.Decisions)-1]
		s.Decision = &d
	}
	return s
}

// api serves, from the owner's last published snapshot (never waiting on
// the owner or on Kafka):
//
//	GET /v1/rollouts                    summaries, then the quarantined rollouts (at most 100)
//	GET /v1/rollouts/{id}               the whole rollout: plan, waves, nodes, decisions (409: quarantined)
//	GET /v1/rollouts/{id}/decisions     the decision log with each decision's inputs
//	GET /v1/nodes                       every node of every rollout
//	GET /v1/nodes/search                nodes filtered (rollout, q, state), a page at a time
//	GET /v1/rollouts/{id}/series        the chart's points: parity, reachability, healthy share
//	GET /v1/stream[?rollout=ID]         server-sent events: what changed, as it changes (stream.go)
//	POST /v1/requests                   relay a signed steering request to the requests topic (relay.go)
//	GET /                               the console (console.go)
//	GET /healthz                        leader or standby, epoch, the leader it knows of
//	GET /metrics                        Prometheus
//	GET /packages/...                   PackagesDir, for agents to install from
func (s *Server) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, _ *http.Request) {
		v := s.view.Load()
		out := make([]Summary, 0, len(v.ids)+len(v.quarantine))
		for _, id := range v.ids {
			out = append(out, v.rollouts[id].summary)
		}
		writeJSON(w, http.StatusOK, append(out, v.quarantine...))
	})
	mux.HandleFunc("GET /v1/rollouts/{id}", s.rolloutView(func(ro *coordinator.Rollout) any { return ro }))
	mux.HandleFunc("GET /v1/rollouts/{id}/decisions", s.rolloutView(func(ro *coordinator.Rollout) any { return ro.Decisions }))
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		v := s.view.Load()
		out := []NodeView{}
		for _, id := range v.ids {
			ro := &v.rollouts[id].rollout
			for i := range ro.Nodes {
				out = append(out, NodeView{Rollout: id, Node: &ro.Nodes[i]})
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/nodes/search", s.searchNodes)
	mux.HandleFunc("GET /v1/rollouts/{id}/series", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.hub.seriesOf(r.PathValue("id")))
	})
	mux.HandleFunc("GET /v1/stream", s.serveStream)
	mux.HandleFunc("POST /v1/requests", s.serveRelay)
	s.console(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.status.Load())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.cfg.PackagesDir != "" {
		mux.Handle("GET /packages/", http.StripPrefix("/packages/", http.FileServer(http.Dir(s.cfg.PackagesDir))))
	}
	return mux
}

// rolloutView serves what view takes from the rollout named in the path,
// or 404.
func (s *Server) rolloutView(view func(*coordinator.Rollout) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := s.view.Load()
		rv, ok := v.rollouts[r.PathValue("id")]
		if q, quarantined := v.quarantined[r.PathValue("id")]; !ok && quarantined {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "rollout " + q.ID + " is quarantined: " + q.Quarantined})
			return
		}
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no rollout " + r.PathValue("id")})
			return
		}
		writeJSON(w, http.StatusOK, view(&rv.rollout))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// nodePage is a page of GET /v1/nodes/search.
type nodePage struct {
	Total   int        `json:"total"`   // nodes of every rollout
	Matched int        `json:"matched"` // of them, those the filter matches
	Offset  int        `json:"offset"`
	Nodes   []NodeView `json:"nodes"` // at most limit, from offset
}

// maxNodePage bounds a page of nodes.
const maxNodePage = 1000

// searchNodes is GET /v1/nodes/search?rollout=&q=&state=&limit=&offset=:
// the nodes of every rollout (or of one), whose id contains q, in the
// given state (a progress, none, failed, or a health: passing, warning,
// critical, unknown), limit of them (100; at most maxNodePage) from offset.
func (s *Server) searchNodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := 100, 0
	for _, p := range []struct {
		name string
		v    *int
		max  int
	}{{"limit", &limit, maxNodePage}, {"offset", &offset, 1 << 30}} {
		if t := q.Get(p.name); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 || n > p.max {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": p.name + ": want an integer from 0 to " + strconv.Itoa(p.max)})
				return
			}
			*p.v = n
		}
	}
	rollout, text, state := q.Get("rollout"), q.Get("q"), q.Get("state")
	v := s.view.Load()
	out := nodePage{Offset: offset, Nodes: []NodeView{}}
	for _, id := range v.ids {
		ro := &v.rollouts[id].rollout
		out.Total += len(ro.Nodes)
		if rollout != "" && id != rollout {
			continue
		}
		for i := range ro.Nodes {
			n := &ro.Nodes[i]
			if text != "" && !strings.Contains(n.ID, text) || state != "" && !nodeIn(n, state) {
				continue
			}
			if out.Matched >= offset && len(out.Nodes) < limit {
				out.Nodes = append(out.Nodes, NodeView{Rollout: id, Node: n})
			}
			out.Matched++
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// nodeIn reports whether a node is in state: its progress, "failed", or
// its health.
func nodeIn(n *coordinator.Node, state string) bool {
	switch state {
	case "failed":
		return n.Failure != ""
	case string(n.Health):
		return true
	}
	return coordinator.ProgressName(n.Reached) == state
}
