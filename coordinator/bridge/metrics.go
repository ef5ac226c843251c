package bridge

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	syncs    *prometheus.CounterVec   // by kind (full, service) and result (ok, error)
	writes   *prometheus.CounterVec   // by op (put, delete) and result
	duration *prometheus.HistogramVec // by kind
	inSync   prometheus.Gauge         // services in sync at the last Parity
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "regshift", Subsystem: "bridge", Name: "syncs_total",
			Help: "Syncs run, by kind (full, service) and result (ok, error).",
		}, []string{"kind", "result"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "regshift", Subsystem: "bridge", Name: "writes_total",
			Help: "Writes to the target registry, by op (put, delete) and result (ok, error).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "regshift", Subsystem: "bridge", Name: "sync_duration_seconds",
			Help: "Duration of syncs, by kind (full, service).", Buckets: prometheus.DefBuckets,
		}, []string{"kind"}),
		inSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "regshift", Subsystem: "bridge", Name: "services_in_sync",
			Help: "Services whose target instances equal the source's at the last parity check.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.syncs, m.writes, m.duration, m.inSync} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
