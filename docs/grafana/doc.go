// Package grafana holds regshift.json, the Grafana dashboard for the
// coordinator's and the agents' Prometheus metrics (docs/operating.md,
// "Grafana dashboard"). Its tests keep the dashboard honest: every metric a
// query names must be one the code registers, with the labels it has.
package grafana
