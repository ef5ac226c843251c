package registries

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// Instance is one registered provider of a service.
type Instance struct {
	// Service is the logical service name, e.g. "orders".
	Service string
	// ID identifies the instance within its service.
	ID string
	// Address is the host name or IP consumers dial.
	Address string
	// Port is the TCP port consumers dial (1-65535).
	Port int
	// Tags are free-form labels; order is not significant.
	Tags []string
	// Metadata holds string key/value pairs (see Validate for the limits).
	Metadata map[string]string
}

// MetaNode is the metadata key under which a regshift node agent records
// the node that registered an instance: what makes it owned by a node of a
// rollout's plan.
const MetaNode = "regshift-node"

// MetaMirrored is the metadata key under which the coordinator's bridge
// records, on each instance it copies into the new registry, the bridge's
// name: a mirror, not the owner's own registration.
const MetaMirrored = "regshift-mirrored"

// MetaCheckPath is the metadata key under which a node agent records the
// path of an instance's HTTP check when the check targets the instance's
// own address and port: consumers probe the endpoint with a GET of it.
const MetaCheckPath = "regshift-check-path"

// Key identifies an instance across registries: service and id.
type Key struct {
	Service string
	ID      string
}

// Key returns the instance's identity.
func (i Instance) Key() Key { return Key{Service: i.Service, ID: i.ID} }

// Equal reports whether two instances carry the same data. Tag order is
// ignored; a nil and an empty map or slice are equal.
func (i Instance) Equal(o Instance) bool {
	if i.Service != o.Service || i.ID != o.ID || i.Address != o.Address || i.Port != o.Port {
		return false
	}
	if !maps.Equal(i.Metadata, o.Metadata) {
		return false
	}
	a, b := slices.Clone(i.Tags), slices.Clone(o.Tags)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Clone returns a deep copy, so the caller may keep it while the original's
// tags and metadata change.
func (i Instance) Clone() Instance {
	i.Tags = slices.Clone(i.Tags)
	i.Metadata = maps.Clone(i.Metadata)
	return i
}

// SortInstances orders instances by service, then id, in place.
func SortInstances(in []Instance) {
	slices.SortFunc(in, func(a, b Instance) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Registry is a service registry as a host's apps and regshift see it.
//
// Every method is safe for concurrent use and bounded by its context. When
// the registry cannot be reached, methods return an error wrapping
// ErrUnavailable promptly instead of waiting for it to come back.
type Registry interface {
	// Register creates the instance, or replaces the instance with the same
	// service and id. The registration belongs to this client: it is kept
	// alive (session, health check) and restored after the registry lost it,
	// until Deregister or Close. When Register fails with a retriable error
	// the client still holds the instance as desired and completes the
	// registration once the registry answers again (Deregister cancels it);
	// after any other error nothing is held.
	Register(ctx context.Context, inst Instance) error
	// Deregister removes the instance; ErrNotFound when there is none.
	Deregister(ctx context.Context, service, id string) error
	// Resolve returns the healthy instances of service, sorted by id; an
	// unknown service has none.
	Resolve(ctx context.Context, service string) ([]Instance, error)
	// Watch delivers the healthy instances of service (as Resolve returns
	// them) at once and again after every change, until ctx ends or the
	// registry is closed; then the channel is closed. A slow reader only
	// ever misses intermediate sets, never the latest one. Transient
	// failures are retried inside the watch.
	Watch(ctx context.Context, service string) (<-chan []Instance, error)
	// Services lists the names of the services that have instances.
	Services(ctx context.Context) ([]string, error)
	// Ping checks that the registry answers.
	Ping(ctx context.Context) error
	// Close releases the client. What the registry does with this client's
	// registrations is implementation-defined (ZooKeeper drops ephemeral
	// nodes; see each package).
	Close() error
}

// HealthSetter is a Registry that can carry the health its host's own
// checks see of an instance it registered, while keeping the instance
// registered: Consul sets the instance's check status. Resolve and Watch
// leave out an instance marked critical. A node agent withdraws an instance
// from a registry without it (Deregister while failing, Register once
// passing again): ZooKeeper's Curator layout has no health of its own.
type HealthSetter interface {
	// SetHealth marks the instance service/id this client registered
	// passing or critical, output saying why (the adapter bounds it). The
	// mark holds across keepalives and re-registrations until the next
	// SetHealth, Deregister or Close. ErrNotFound when this client holds no
	// such instance; a retriable error when the registry cannot be reached,
	// and the client applies the mark once it answers again.
	SetHealth(ctx context.Context, service, id string, passing bool, output string) error
}
