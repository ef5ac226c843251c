package etcd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/regshift/regshift/registries/address"
)

// Config holds the client's settings. Start from DefaultConfig.
type Config struct {
	// Endpoints are the etcd members' client addresses, host:port (no
	// scheme: TLS says whether to speak TLS). Required.
	Endpoints []string
	// Prefix is the key prefix of the registrations, an absolute clean
	// path below "/" ("/services"): instance keys are
	// <Prefix>/<service>/<id>. Two prefixes on one cluster are two
	// registries that do not see each other.
	Prefix string
	// LeaseTTL is the TTL of the client's lease, a whole number of seconds,
	// at least 2s (10s): how long the registrations of a client that died
	// or lost the cluster outlive it. The client renews the lease every
	// LeaseTTL/3.
	LeaseTTL time.Duration
	// RequestTimeout bounds every request to the cluster (5s), also while
	// it cannot be reached: the operation then fails with
	// registries.ErrUnavailable. The caller's context can end it sooner.
	RequestTimeout time.Duration
	// WatchResync is how often a watch checks that the cluster's revision
	// has not gone back — a cluster restored from a snapshot or restarted
	// without its data, where resuming at the last revision seen would
	// wait for revisions that already came — and reads the service again
	// when it did (30s).
	WatchResync time.Duration
	// RevokeOnClose revokes the client's lease when it closes, so etcd
	// deletes its registrations at once (true). Off, they live until the
	// lease's TTL runs out.
	RevokeOnClose bool
	// TLS, when not nil, makes the client speak TLS to the members with
	// this configuration (CA, client certificate, server name).
	TLS *tls.Config
}

// DefaultConfig returns the settings for the cluster at endpoints.
func DefaultConfig(endpoints ...string) Config {
	return Config{
		Endpoints:      endpoints,
		Prefix:         "/services",
		LeaseTTL:       10 * time.Second,
		RequestTimeout: 5 * time.Second,
		WatchResync:    30 * time.Second,
		RevokeOnClose:  true,
	}
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("etcd: invalid config")

func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("%w: no Endpoints", ErrConfig)
	}
	list := strings.Join(c.Endpoints, ",")
	if _, p, err := address.Etcd(list); err != nil {
		return fmt.Errorf("%w: Endpoints must each be host:port: %w", ErrConfig, err)
	} else if p != "" {
		return fmt.Errorf("%w: Endpoints %q name a path %q; the prefix is a setting of its own", ErrConfig, c.Endpoints, p)
	}
	switch {
	case !strings.HasPrefix(c.Prefix, "/") || c.Prefix == "/" || path.Clean(c.Prefix) != c.Prefix:
		return fmt.Errorf("%w: Prefix %q must be an absolute, clean path below /", ErrConfig, c.Prefix)
	case c.LeaseTTL < 2*time.Second:
		return fmt.Errorf("%w: LeaseTTL %v is below 2s", ErrConfig, c.LeaseTTL)
	case c.LeaseTTL%time.Second != 0:
		return fmt.Errorf("%w: LeaseTTL %v is not a whole number of seconds", ErrConfig, c.LeaseTTL)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("%w: RequestTimeout %v must be positive", ErrConfig, c.RequestTimeout)
	case c.WatchResync <= 0:
		return fmt.Errorf("%w: WatchResync %v must be positive", ErrConfig, c.WatchResync)
	}
	return nil
}
