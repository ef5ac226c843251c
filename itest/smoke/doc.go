// Package smoke proves, from Go, that each real server regshift depends on is
// up and usable: Kafka produce/consume with acks=all, ZooKeeper ephemeral
// znodes and watches, Consul registration and health queries, and
// testcontainers-go running images this project builds locally.
//
// The tests fail with a clear message (not skip) when a server is missing and
// CI=true; see package itest/servers.
package smoke
