// Package open opens a registries.Registry of any supported kind from an
// address and settings; the one opener the coordinator's bridge and the node
// agent share.
//
// Open takes a registries.Kind and Settings: an address in the form the
// plans and agent configs use ("zk1:2181,zk2:2181/services" for ZooKeeper,
// the agent's "host:port" for Consul) plus the optional settings an
// interface package carries (Consul datacenter, token, TLS; timeouts).
// Reading token and certificate files is the caller's business: Settings
// holds the token itself and the TLS file paths.
package open
