package benchfleet

import (
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/regshift/regshift/schema"
)

// Config is one run's settings.
type Config struct {
	// Nodes is N, the simulated fleet: half providers, half consumers.
	// Default 1,000; at least 2.
	Nodes int
	// Brokers of a real Kafka; empty: an embedded broker (franz-go's kfake)
	// started for the run. Every run uses its own topic prefix and deletes
	// its topics and groups afterwards.
	Brokers []string
	// Soak is each gate's soak (the plan's soak_seconds): whole seconds.
	// Default 1s.
	Soak time.Duration
	// Health is how often each node reports its health, spread evenly over
	// the fleet (N / Health reports a second); a node also reports after
	// every command, as an agent does. 0: after commands only. Default 5s.
	Health time.Duration
	// Partitions is P of the commands topic (and of the raw floor's). Default 12.
	Partitions int
	// Timeout ends a rollout that has not ended by then; it is reported as
	// not finalized. Default 30m.
	Timeout time.Duration
	// Split runs the coordinator in a child process (this binary's hidden
	// `bench fleet-coordinator`), whose heap is then measured on its own.
	// On the embedded broker too (it stays in this process). Default false.
	Split bool
	// UnsignedEvents has the fleet publish its acks and health unsigned
	// and the coordinator accept them so (AcceptUnsignedEvents), as before
	// agents signed, for comparison. Default false: each node signs its
	// events with its own Ed25519 key, as an agent does, and the
	// coordinator verifies them against NodeKeysDir.
	UnsignedEvents bool
	// OnAPI, when set, is told the coordinator's API address (its console
	// is at /) once it leads, before the rollout is requested.
	OnAPI func(url string)

	// command starts the child of Split; nil: this binary (tests set it).
	command func(args ...string) *exec.Cmd
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Nodes: 1000, Soak: time.Second, Health: 5 * time.Second, Partitions: 12, Timeout: 30 * time.Minute}
}

func (c Config) validate() error {
	var errs []error
	if c.Nodes < 2 {
		errs = append(errs, fmt.Errorf("nodes %d: want at least 2 (a provider and a consumer)", c.Nodes))
	}
	if c.Nodes > schema.PlanMaxNodes {
		errs = append(errs, fmt.Errorf("nodes %d: a plan has at most %d", c.Nodes, schema.PlanMaxNodes))
	}
	if c.Soak < 0 || c.Soak%time.Second != 0 {
		errs = append(errs, fmt.Errorf("soak %s: want whole seconds, 0 or more", c.Soak))
	}
	if c.Health < 0 {
		errs = append(errs, fmt.Errorf("health %s is negative", c.Health))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d: want at least 1", c.Partitions))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: want positive", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("benchfleet: Config: %w", err)
	}
	return nil
}
