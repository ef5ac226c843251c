// Package server runs the coordinator: it takes part in leader election
// among replicas, replays the state topic, and while it leads, one owner
// goroutine folds events, requests, registry reports and ticks through
// coordinator.Step and carries out the effects in order (persist the record,
// send the signed commands, start or stop the bridge). It supervises the
// bridges and serves the HTTP API from immutable snapshots, so no request
// waits on the owner or on Kafka. It reaches Kafka only through package
// events.
package server
