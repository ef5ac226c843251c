package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	leader          prometheus.Gauge
	rollouts        *prometheus.GaugeVec
	nodes           *prometheus.GaugeVec
	commands        *prometheus.CounterVec
	acks            *prometheus.CounterVec
	refused         *prometheus.CounterVec
	timedOut        prometheus.Counter
	decisionSeconds prometheus.Histogram
	stateRecords    prometheus.Counter
	stateBytes      prometheus.Counter
	stateRefused    *prometheus.CounterVec
	claimsRefused   prometheus.Counter
	quarantined     prometheus.Gauge
	bridges         prometheus.Gauge
	unowned         prometheus.Gauge
	stepPanics      prometheus.Counter
	streams         prometheus.Gauge
	streamsDropped  prometheus.Counter
	relayed         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "regshift", "coordinator"
	m := &metrics{
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "inputs_refused_total",
			Help: "Verified inputs a rollout set aside without acting on them, by reason (other-rollout, future-epoch)."}, []string{"reason"}),
		timedOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_timed_out_total",
			Help: "Commands not answered within the ack timeout (the node counts as unknown)."}),
		decisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "decision_duration_seconds",
			Help: "Time to fold an input that led to a decision.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 20)}),
		stateRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "state_records_written_total",
			Help: "Records written to the state topic (rollout heads and node records)."}),
		stateBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "state_bytes_written_total",
			Help: "Bytes (keys and values) written to the state topic."}),
		stateRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "state_records_refused_total",
			Help: "State records ignored on replay or in the epoch watch, by reason (unsigned, unknown-key, bad-signature, invalid-body, …)."},
			[]string{"reason"}),
		claimsRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "epoch_claims_refused_total",
			Help: "Signed epoch claims ignored for claiming more than one above the highest trusted claim."}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "rollouts_quarantined",
			Help: "Rollouts whose records this leader refused on replay: not run, their nodes not commanded."}),
		bridges: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "bridges_running",
			Help: "Bridges this leader runs, kept ones (finalized under unowned: keep-bridge) included."}),
		unowned: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "unowned_instances",
			Help: "Instances of the old registries that no node of their rollout's plan registered, at the last registry reports."}),
		stepPanics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "step_panics_total",
			Help: "Steps of a rollout that panicked: the panic was recovered and the rollout held."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "console_streams",
			Help: "Console live streams (server-sent events) open on this replica."}),
		streamsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "console_streams_dropped_total",
			Help: "Console streams dropped for falling behind (the browser reconnects and reads a fresh snapshot)."}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "console_requests_total",
			Help: "Requests the console posted for relay, by outcome (relayed, or the reason they were refused)."}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.streams, m.streamsDropped, m.relayed, m.leader, m.rollouts, m.nodes, m.commands, m.acks, m.refused, m.timedOut, m.decisionSeconds,
		m.stateRecords, m.stateBytes, m.stateRefused, m.claimsRefused, m.quarantined, m.bridges, m.unowned, m.stepPanics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe sets the gauges from a published view.
func (m *metrics) observe(v *view) {
	m.rollouts.Reset()
	m.nodes.Reset()
	for _, rv := range v.rollouts {
		m.rollouts.WithLabelValues(string(rv.summary.Phase)).Inc()
		if rv.summary.Phase.Ended() {
			continue
		}
		for k, n := range rv.summary.Nodes {
			m.nodes.WithLabelValues(k).Add(float64(n))
		}
	}
}
