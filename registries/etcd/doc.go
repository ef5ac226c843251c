// Package etcd is the registries.Registry for etcd (v3 API, client
// go.etcd.io/etcd/client/v3).
//
// # Key layout
//
// It follows etcd's own naming convention, the one of
// go.etcd.io/etcd/client/v3/naming/endpoints and of gRPC's etcd resolver
// (naming/resolver), whose target for service orders under /services is
// "etcd:////services/orders" (the resolver drops one leading '/'): a gRPC
// client dials regshift's instances, and regshift reads the endpoints that
// such clients' servers register:
//
//	<prefix>/<service>/<id>  ->  {"Op":0,"Addr":"10.1.2.3:8080","Metadata":{"tags":["v2"],"metadata":{"zone":"eu-1"}}}
//
// The prefix is Config.Prefix ("/services"); the value is the JSON of an
// endpoints update, Addr the instance's host:port and Metadata what the
// address cannot carry (tags, metadata; both left out when empty). The key
// names the instance: the endpoints convention leaves the last segment to
// the writer, and regshift puts the instance id there. An endpoint written
// by another client with other Metadata (or none) is read without tags and
// metadata; a key or value that is not an instance is logged and skipped.
// This convention was chosen over go-micro's etcd registry (a key per node,
// /micro/registry/<service>/<node>, holding a whole service description)
// because it is etcd's own, stable since etcd 3.1, and read by every
// gRPC-Go client through etcd's resolver. Two prefixes on one cluster
// (/services, /services-v2) are two registries that do not see each other.
//
// # Liveness: one lease per client
//
// A client grants one lease (Config.LeaseTTL, 10s) with its first
// registration and keeps it alive (every TTL/3); every registration is put
// with it. When the client dies or loses the cluster for longer than the
// TTL, etcd deletes its keys. When the lease is lost — revoked, expired
// while the cluster could not be reached, gone with a cluster that lost
// its data — the client grants a new one and puts every registration it
// holds back under it. A registration whose write failed with a retriable
// error is completed the same way, and so is a Deregister that could not
// reach the cluster. Close revokes the lease (Config.RevokeOnClose), so
// etcd deletes the client's keys at once. A key deleted behind the
// client's back while its lease lives is not put back.
//
// # Watch
//
// Watch reads the service's prefix, then watches it from the revision
// after the read; when the watch breaks it resumes from the last revision
// seen + 1 (the etcd client also resumes so across reconnects). When that
// revision was compacted away, or the cluster's revision went back (checked
// every Config.WatchResync and before resuming), it reads the whole set
// again. Every set it delivers is complete.
//
// # Health
//
// The endpoints layout has no health: gRPC's resolver dials every
// endpoint of a prefix. Client is a registries.HealthSetter by withdrawal:
// an instance marked critical has no key, while the client keeps holding
// it; marked passing again, it is put back. So every reader leaves it out,
// regshift's or not.
//
// # Not yet
//
// Authentication (username and password): the etcd client authenticates
// inside clientv3.New and waits for the cluster to do so, where this
// package's New must not wait. TLS is a setting (Config.TLS) handed to the
// etcd client as it is.
package etcd
