package bridge

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/registries"
)

// Config holds the bridge's settings. Start from DefaultConfig.
type Config struct {
	// Name marks what this bridge writes (MetaMirrored) and decides what it
	// may delete; keep it stable across restarts ("regshift-bridge").
	Name string
	// SourceName is recorded on every mirror (MetaSource), e.g. "zookeeper".
	SourceName string
	// ResyncInterval is the period of the full resync backstop (30s).
	ResyncInterval time.Duration
	// RetryInterval is the wait before retrying a full sync that failed
	// with a retriable error, e.g. a registry unreachable (1s). Other
	// failures (an instance the target refuses) wait for the next resync.
	RetryInterval time.Duration
	// Parallelism bounds the concurrent writes to the target (8).
	Parallelism int
	// Include selects the services to mirror; all when nil. Services it
	// leaves out are neither mirrored nor cleaned up, nor in the parity
	// report.
	Include func(service string) bool
	// Owned says whether a source instance belongs to the fleet being
	// moved (for the coordinator: registered by a node of the plan, see
	// registries.MetaNode); Bridge.Parity lists the others as Unowned.
	// Nil: every instance is owned.
	Owned func(in registries.Instance) bool
	// Metrics registers the bridge's metrics; none when nil.
	Metrics prometheus.Registerer
}

// DefaultConfig returns the settings of a ZooKeeper -> Consul bridge.
func DefaultConfig() Config {
	return Config{
		Name:           "regshift-bridge",
		SourceName:     "zookeeper",
		ResyncInterval: 30 * time.Second,
		RetryInterval:  time.Second,
		Parallelism:    8,
	}
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("bridge: invalid config")

func (c Config) validate() error {
	for field, v := range map[string]string{"Name": c.Name, "SourceName": c.SourceName} {
		// The values go into instance metadata: hold them to its limits.
		probe := registries.Instance{Service: "s", ID: "i", Address: "127.0.0.1", Port: 1, Metadata: map[string]string{"k": v}}
		if v == "" || registries.Validate(probe) != nil {
			return fmt.Errorf("%w: %s %q must be a non-empty metadata value", ErrConfig, field, v)
		}
	}
	switch {
	case c.ResyncInterval <= 0:
		return fmt.Errorf("%w: ResyncInterval %v must be positive", ErrConfig, c.ResyncInterval)
	case c.RetryInterval <= 0:
		return fmt.Errorf("%w: RetryInterval %v must be positive", ErrConfig, c.RetryInterval)
	case c.Parallelism < 1:
		return fmt.Errorf("%w: Parallelism %d must be at least 1", ErrConfig, c.Parallelism)
	}
	return nil
}
