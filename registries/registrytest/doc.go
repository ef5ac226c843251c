// Package registrytest is the one conformance suite every
// registries.Registry implementation runs (memory, and ZooKeeper, Consul and
// Eureka on the real servers), with the registries.HealthSetter suite for the
// implementations that carry health (Harness.Health), its benchmarks, the
// polling helpers the suite and the bridge tests share, and the pieces of
// each adapter's own fault tests (Recorder, ServerRestart).
//
// An implementation's test calls Run with a Harness that knows how to make a
// client, make the registry lose its registrations, and point a client at a
// registry that does not answer.
package registrytest
