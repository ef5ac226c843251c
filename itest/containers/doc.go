// Package containers starts the parts of a regshift deployment as containers
// for tests: Kafka, ZooKeeper, Consul, a coordinator and node agents, each on
// the host network and listening on 127.0.0.1 on ports of its own, so tests
// never collide with the shared servers or with each other.
//
// Images are built locally by scripts/images.sh (`make images`); Images
// names them and reads REGSHIFT_IMAGE_KAFKA, REGSHIFT_IMAGE_ZOOKEEPER,
// REGSHIFT_IMAGE_CONSUL and REGSHIFT_IMAGE_REGSHIFT, so teams with registry
// access can point the helpers at images of their own (they must accept the
// same environment variables, see compose/*/entrypoint.sh).
//
// Every handle has Stop (SIGTERM), Kill (SIGKILL), Start and Restart; Start
// waits until the part answers a real request (a Kafka metadata request,
// ZooKeeper's ruok, a Consul leader, the coordinator's /healthz, the agent's
// /v1/status). Containers are removed with the test; their logs go to t.Log
// when the test failed.
//
// The suite in this folder (build tag containers) runs regshift end to end
// on these containers: go test -tags containers ./itest/containers/.
package containers
