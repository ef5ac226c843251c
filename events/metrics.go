package events

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the transport's Prometheus metrics. Create them once per
// registry and share them among producers and consumers.
type Metrics struct {
	published      *prometheus.CounterVec   // topic, outcome: ok | error
	publishRetries *prometheus.CounterVec   // topic
	publishSeconds *prometheus.HistogramVec // topic
	consumed       *prometheus.CounterVec   // topic, outcome: handled | skipped | duplicate | dead-lettered
	deadLetters    *prometheus.CounterVec   // topic, reason
	errors         *prometheus.CounterVec   // topic, op: fetch | commit | handle | dead-letter | offset
	rebuilds       *prometheus.CounterVec   // topic
	handleSeconds  *prometheus.HistogramVec // topic
	batchRecords   *prometheus.HistogramVec // topic
	keyringReloads *prometheus.CounterVec   // keyring, outcome: reloaded | refused
	keyringKeys    *prometheus.GaugeVec     // keyring
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "regshift", "events"
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "published_total",
			Help: "Records published, by topic and outcome (ok, error)."}, []string{"topic", "outcome"}),
		publishRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publish_retries_total",
			Help: "Publish attempts retried after a retriable error."}, []string{"topic"}),
		publishSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "publish_duration_seconds",
			Help: "Time to publish a batch, retries included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"topic"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "consumed_total",
			Help: "Records consumed, by outcome (handled, skipped, duplicate, dead-lettered)."}, []string{"topic", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_total",
			Help: "Records sent to the dead-letter topic, by source topic and reason."}, []string{"topic", "reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "consumer_errors_total",
			Help: "Consumer loop errors, by operation (fetch, commit, handle, dead-letter, offset)."}, []string{"topic", "op"}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reader_rebuilds_total",
			Help: "Readers closed and rebuilt after a persistent error."}, []string{"topic"}),
		handleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "handle_duration_seconds",
			Help:    "Time to process a fetched batch of records: decode, handle, dead-letter (a partition consumer's batch is one record).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"topic"}),
		batchRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_records",
			Help: "Records in each batch a consumer processes.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}, []string{"topic"}),
		keyringReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "keyring_reloads_total",
			Help: "Changes of a keyring folder, by outcome: reloaded, or refused (malformed: the last good keys stay, removals and revocations apply)."},
			[]string{"keyring", "outcome"}),
		keyringKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "keyring_keys",
			Help: "Keys a watched keyring trusts (not revoked)."}, []string{"keyring"}),
	}
	for _, c := range []prometheus.Collector{m.published, m.publishRetries, m.publishSeconds, m.consumed, m.deadLetters, m.errors, m.rebuilds, m.handleSeconds, m.batchRecords,
		m.keyringReloads, m.keyringKeys} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("events: register metrics"), err)
		}
	}
	return m, nil
}

// keyringReloaded counts a change of a keyring folder; m may be nil.
func (m *Metrics) keyringReloaded(dir, outcome string) {
	if m != nil {
		m.keyringReloads.WithLabelValues(dir, outcome).Inc()
	}
}

// keyringSize sets the keys a keyring trusts; m may be nil.
func (m *Metrics) keyringSize(dir string, n int) {
	if m != nil {
		m.keyringKeys.WithLabelValues(dir).Set(float64(n))
	}
}
