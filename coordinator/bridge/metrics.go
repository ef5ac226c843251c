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
	m.syncs, errs = register(reg, m.syncs, errs)
	m.writes, errs = register(reg, m.writes, errs)
	m.duration, errs = register(reg, m.duration, errs)
	m.inSync, errs = register(reg, m.inSync, errs)
	return m, errors.Join(errs...)
}

// register registers c, or takes the collector registered already under
// the same names and labels: a bridge started again for the same rollout
// counts on in the same series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errs []error) (C, []error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, errs
		}
	}
	return c, append(errs, err)
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
