package eureka

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
	// Address is the Eureka server's host:port (127.0.0.1:8761). One
	// server: a cluster is reached through one of its peers or a load
	// balancer in front of them (peers replicate to each other).
	Address string
	// Path is the context path of the server's REST API ("/eureka", Spring
	// Cloud Netflix's; Netflix's own eureka-server war serves "/eureka/v2").
	Path string
	// Scheme is "http" or "https" ("http").
	Scheme string
	// TLS configures HTTPS when Scheme is "https"; nil uses the system's
	// roots.
	TLS *tls.Config
	// Username and Password, when Username is set, are sent as HTTP basic
	// authentication (a server secured with Spring Security's defaults).
	Username, Password string
	// RenewalInterval is how often the client renews each lease (10s;
	// whole seconds). Eureka's own clients renew every 30s.
	RenewalInterval time.Duration
	// LeaseDuration is the lease registered with each instance (30s; whole
	// seconds, more than RenewalInterval). Through a long-standing quirk of
	// Eureka's Lease, an instance whose client died leaves 2 x
	// LeaseDuration after its last renewal, plus up to the server's
	// eviction interval (60s by default, 1s on regshift's server), unless
	// self-preservation holds it.
	LeaseDuration time.Duration
	// WatchInterval is how often a watching client fetches the changes of
	// the registry (5s). Eureka's own clients fetch every 30s.
	WatchInterval time.Duration
	// RequestTimeout bounds each request the client makes on its own
	// (renewals, watch fetches, removals on Close) (10s). Calls made with a
	// context are bounded by it alone.
	RequestTimeout time.Duration
	// DeregisterOnClose removes this client's instances when it closes
	// (true). Without it they stay until their leases expire.
	DeregisterOnClose bool
}

// DefaultConfig returns the settings for the Eureka server at addr
// (host:port) with Spring Cloud's context path.
func DefaultConfig(addr string) Config {
	return Config{
		Address:           addr,
		Path:              "/eureka",
		Scheme:            "http",
		RenewalInterval:   10 * time.Second,
		LeaseDuration:     30 * time.Second,
		WatchInterval:     5 * time.Second,
		RequestTimeout:    10 * time.Second,
		DeregisterOnClose: true,
	}
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("eureka: invalid config")

func (c *Config) validate() error {
	if err := address.Eureka(c.Address); err != nil {
		return fmt.Errorf("%w: Address: %w", ErrConfig, err)
	}
	switch {
	case !strings.HasPrefix(c.Path, "/") || path.Clean(c.Path) != c.Path || c.Path == "/":
		return fmt.Errorf("%w: Path %q must be a clean absolute path below / (\"/eureka\")", ErrConfig, c.Path)
	case c.Scheme != "http" && c.Scheme != "https":
		return fmt.Errorf("%w: Scheme %q must be http or https", ErrConfig, c.Scheme)
	case c.RenewalInterval < time.Second || c.RenewalInterval%time.Second != 0:
		return fmt.Errorf("%w: RenewalInterval %v must be whole seconds, at least 1s", ErrConfig, c.RenewalInterval)
	case c.LeaseDuration%time.Second != 0 || c.LeaseDuration <= c.RenewalInterval:
		return fmt.Errorf("%w: LeaseDuration %v must be whole seconds, more than RenewalInterval %v", ErrConfig, c.LeaseDuration, c.RenewalInterval)
	case c.WatchInterval < 100*time.Millisecond || c.WatchInterval > maxDeltaAge:
		return fmt.Errorf("%w: WatchInterval %v must be within 100ms-%v (a delta covers the last minutes only)", ErrConfig, c.WatchInterval, maxDeltaAge)
	case c.RequestTimeout < 100*time.Millisecond:
		return fmt.Errorf("%w: RequestTimeout %v is below 100ms", ErrConfig, c.RequestTimeout)
	case c.Username == "" && c.Password != "":
		return fmt.Errorf("%w: a Password without a Username", ErrConfig)
	}
	return nil
}
