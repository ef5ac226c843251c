// Package eureka is the registries.Registry for Netflix Eureka, over the
// server's REST API in JSON (net/http; no Go Eureka library is kept up:
// hudl/fargo's last release is from 2021 and takes no contexts). The
// project's server is Spring Cloud Netflix's (tools/eureka), whose API is
// at /eureka; Netflix's own war serves /eureka/v2 (Config.Path).
//
// # Mapping
//
// An instance is a Eureka InstanceInfo, registered with POST
// /apps/{APP}:
//   - app = the service name upper-cased: Eureka upper-cases app names
//     itself. The name as given is kept in the metadata (MetaService), so
//     Resolve, Watch and Services give it back as the caller wrote it.
//     Instances of other Eureka clients (no MetaService, e.g. Spring Boot
//     apps) belong to every service whose name upper-cases to their app
//     (Resolve("orders") and Resolve("Orders") both find app ORDERS), and
//     Services lists them by their app lower-cased, as Spring Cloud's
//     discovery client does. Two services whose names differ in case only
//     share one app: an id registered under both is one instance, the
//     later registration's.
//   - instanceId = the id, escaped in request paths (':' and every other
//     character an id may hold travel as they are). An id with a '\' is
//     the exception: servers on Tomcat refuse a '\' in a path even
//     escaped, so such an id is registered as "regshift-" and the hex of
//     its SHA-256 with the id itself in MetaID.
//   - hostName = ipAddr = the address (a host name or an IP address; Eureka
//     does not check ipAddr), port = the port, enabled; the secure port
//     disabled. Reading, the address is hostName (ipAddr when empty), and
//     an instance with only its secure port enabled gives that port.
//   - metadata = the instance's metadata, with the tags as a JSON array
//     under MetaTags. regshift's own keys contain a '.', which no valid
//     instance metadata key does, and reading leaves them out.
//   - vipAddress = secureVipAddress = the service name.
//   - status UP, or DOWN when SetHealth marked the instance critical.
//     Resolve and Watch return UP instances only.
//
// # Liveness: leases and renewals
//
// Every instance is registered with a lease of LeaseDuration that the
// client renews every RenewalInterval (PUT /apps/{APP}/{id}), on up to 8
// concurrent requests. A renewal carries the lastDirtyTimestamp of the
// registration the client holds (each Register and SetHealth makes a newer
// one), and the server answers 404 both for an instance it does not know
// (it restarted, evicted the lease, or an operator removed the instance)
// and for one it holds an older copy of (a registration that failed): the
// client then registers the instance again. So a registration that failed
// with a retriable error is completed by the next renewal, and a server
// restart costs at most one RenewalInterval. Deregister cancels the
// instance (DELETE); Close cancels this client's instances unless
// DeregisterOnClose is off. A client that dies leaves its instances until
// the server evicts them: 2 x LeaseDuration after the last renewal
// (Eureka's Lease.renew adds the duration to the time of the renewal, and
// Lease.isExpired adds it again; a lease never renewed goes after one
// LeaseDuration), plus up to the server's eviction interval (60s by
// default, 1s on regshift's), and never while the server's
// self-preservation holds the registry (a default server enters it when
// more than 15% of the expected renewals stop).
//
// # Eventual consistency: what a read may not show yet
//
// A Eureka server answers reads from a response cache, not from its
// registry. Writes invalidate the cache's read-write layer; reads are
// served from a read-only copy of it refreshed every
// responseCacheUpdateIntervalMs (30s) unless useReadOnlyResponseCache is
// off. So on a server with Eureka's defaults:
//   - Resolve right after Register, SetHealth or Deregister may give the
//     old answer for up to responseCacheUpdateIntervalMs (30s); a read
//     racing a write can even keep the old answer cached until the entry
//     expires (responseCacheAutoExpirationInSeconds, 180s).
//   - Watch adds its own WatchInterval (5s): a change reaches a watch
//     within responseCacheUpdateIntervalMs + WatchInterval (35s).
//   - In a cluster, a peer learns of a write by replication (batched, in
//     usually within a second while the peers are up); a peer that was cut
//     off catches up by its next sync.
//
// The project's server (tools/eureka) turns the read-only cache off and
// expires cache entries after 1s: a read after a write sees it (but for
// that race, 1s at most), and a watch within WatchInterval + 1s. A parity
// check against a Eureka registry must allow its lag: wait
// responseCacheUpdateIntervalMs + WatchInterval (+1s) after the last
// write before reading a difference as missing; on regshift's server
// WatchInterval + 1s.
//
// # Watch: deltas reconciled by hash code
//
// The watches of one client share one fetch loop, which runs while any of
// them does: a full fetch (GET /apps) first, then every WatchInterval a
// delta (GET /apps/delta: the changes of the server's last 3 minutes)
// applied to its view of the whole registry, checked against the hash code
// the server sends with each delta (apps__hashcode: the number of
// instances in each status). When they differ, a change was missed (the
// server restarted, a peer answered) and the loop fetches in full, as
// Eureka's own client does; it also fetches in full when its view is more
// than a minute old (a delta covers the last minutes only, and the hash
// code does not see a change in place) or the server refuses deltas.
//
// # What does not carry across
//
// Eureka has no health check output (SetHealth's output goes into the
// metadata under MetaHealth) and no tags (MetaTags). Leases are Eureka's
// TTL: there is no check a server runs. A service name's case and an id
// with '\' survive only through regshift's metadata: a non-regshift reader
// sees the app upper-cased and the hashed instanceId. Metadata keys of
// other clients' instances are passed through as they are, also those
// registries.Validate would refuse (Spring's "management.port").
package eureka
