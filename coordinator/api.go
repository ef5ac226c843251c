package coordinator

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Summary is one rollout in the list.
type Summary struct {
	ID       string         `json:"id"`
	Phase    Phase          `json:"phase"`
	Paused   bool           `json:"paused"`
	Held     bool           `json:"held"`
	Wave     int            `json:"wave"` // 1-based
	Waves    int            `json:"waves"`
	Nodes    map[string]int `json:"nodes"` // by progress
	Decision *Decision      `json:"last_decision,omitempty"`
}

// NodeView is one node as the API shows it.
type NodeView struct {
	Rollout string `json:"rollout"`
	*Node
}

// Health is /healthz: whether this replica leads, and its epoch.
type Health struct {
	Replica string `json:"replica"`
	Leader  bool   `json:"leader"`
	Epoch   uint64 `json:"epoch"`
}

func summarize(r *Rollout) Summary {
	s := Summary{ID: r.ID, Phase: r.Phase, Paused: r.Paused, Held: r.Held, Wave: r.Wave + 1, Waves: len(r.Waves), Nodes: map[string]int{}}
	for _, n := range r.Nodes {
		k := string(n.Reached)
		if k == "" {
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

// api serves:
//
//	GET /v1/rollouts                    summaries
//	GET /v1/rollouts/{id}               the whole rollout: plan, waves, nodes, decisions
//	GET /v1/rollouts/{id}/decisions     the decision log with each decision's inputs
//	GET /v1/nodes                       every node of every rollout
//	GET /healthz                        leader or standby, epoch
//	GET /metrics                        Prometheus
//	GET /packages/...                   PackagesDir, for agents to install from
func (rt *Runtime) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, _ *http.Request) {
		rt.mu.Lock()
		out := []Summary{}
		for _, id := range slices.Sorted(mapsKeys(rt.rollouts)) {
			out = append(out, summarize(rt.rollouts[id]))
		}
		rt.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/rollouts/{id}", rt.rolloutView(func(ro *Rollout) any { return ro }))
	mux.HandleFunc("GET /v1/rollouts/{id}/decisions", rt.rolloutView(func(ro *Rollout) any { return ro.Decisions }))
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		out := []NodeView{}
		for _, id := range slices.Sorted(mapsKeys(rt.rollouts)) {
			for _, n := range rt.rollouts[id].Nodes {
				out = append(out, NodeView{Rollout: id, Node: n})
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		rt.mu.Lock()
		h := Health{Replica: rt.cfg.ID, Leader: rt.leading, Epoch: rt.epoch}
		rt.mu.Unlock()
		writeJSON(w, http.StatusOK, h)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(rt.reg, promhttp.HandlerOpts{}))
	if rt.cfg.PackagesDir != "" {
		mux.Handle("GET /packages/", http.StripPrefix("/packages/", http.FileServer(http.Dir(rt.cfg.PackagesDir))))
	}
	return mux
}

// rolloutView serves what view takes from the rollout named in the path,
// or 404.
func (rt *Runtime) rolloutView(view func(*Rollout) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		ro, ok := rt.rollouts[r.PathValue("id")]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no rollout " + r.PathValue("id")})
			return
		}
		writeJSON(w, http.StatusOK, view(ro))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type runtimeMetrics struct {
	leader          prometheus.Gauge
	rollouts        *prometheus.GaugeVec
	nodes           *prometheus.GaugeVec
	commands        *prometheus.CounterVec
	acks            *prometheus.CounterVec
	timedOut        prometheus.Counter
	decisionSeconds prometheus.Histogram
}

func newRuntimeMetrics(reg prometheus.Registerer) (*runtimeMetrics, error) {
	const ns, sub = "regshift", "coordinator"
	m := &runtimeMetrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leader",
			Help: "1 while this replica leads."}),
		rollouts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "rollouts",
			Help: "Rollouts by phase."}, []string{"phase"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "nodes",
			Help: "Nodes of active rollouts by progress (none, installed, active, switched-back, uninstalled, failed)."}, []string{"state"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_sent_total",
			Help: "Commands sent (re-sends included), by kind."}, []string{"kind"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "acks_total",
			Help: "Acks received, by outcome (done, failed, rejected)."}, []string{"outcome"}),
		timedOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_timed_out_total",
			Help: "Commands not answered within the ack timeout (the node counts as unknown)."}),
		decisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "decision_duration_seconds",
			Help: "Time to fold an input that led to a decision.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 20)}),
	}
	for _, c := range []prometheus.Collector{m.leader, m.rollouts, m.nodes, m.commands, m.acks, m.timedOut, m.decisionSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe refreshes the gauges. Call with rt.mu held.
func (m *runtimeMetrics) observe(rollouts map[string]*Rollout) {
	m.rollouts.Reset()
	m.nodes.Reset()
	for _, r := range rollouts {
		m.rollouts.WithLabelValues(string(r.Phase)).Inc()
		if r.Phase.Ended() {
			continue
		}
		for k, n := range summarize(r).Nodes {
			m.nodes.WithLabelValues(k).Add(float64(n))
		}
	}
}
