// Package zookeeper is the registries.Registry for ZooKeeper in Apache
// Curator's x-discovery layout, so that Java services on Curator or Spring
// Cloud Zookeeper and regshift see each other's registrations.
//
// Every instance is an ephemeral znode <BasePath>/<service>/<id> holding
// Curator's JSON ServiceInstance (name, id, address, port, sslPort, payload,
// registrationTimeUTC, serviceType, uriSpec). The payload follows Spring
// Cloud Zookeeper's ZookeeperInstance ({"@class", id, name, metadata}) and
// carries the instance's tags as an extra "tags" field, which Curator's
// serializer ignores. Service nodes are container znodes, as Curator makes
// them.
//
// Registrations are ephemeral: they live as long as the client's session.
// When the session expires the client opens a new one (go-zookeeper does)
// and re-creates every registration it owns.
package zookeeper
