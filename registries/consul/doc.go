// Package consul is the registries.Registry for Consul: instances are
// registered through the local agent's API, each with a TTL health check
// that the client keeps passing and with DeregisterCriticalServiceAfter, so
// an instance whose client died turns critical and is then removed by
// Consul. Resolve and Watch return passing instances only; Watch uses
// blocking queries.
//
// Client is also a registries.HealthSetter: SetHealth puts the health a node
// agent's app check sees into the instance's TTL check (critical, with the
// check's output), which the keepalive keeps and every re-registration
// registers. Consul removes an instance critical for DeregisterCriticalAfter;
// the keepalive registers it again, still critical.
//
// An instance's Consul service ID is "<service>:<id>" (service names cannot
// contain ':'), so equal ids in different services never collide on an
// agent. Instances registered by other Consul clients keep their own service
// ID as id.
//
// Catalog is the other writer, for mirrors: catalog entries on a node of
// their own, without checks and without keepalives, read like the agent
// client's instances.
package consul
