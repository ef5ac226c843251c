package events

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// ElectorConfig configures leader election among replicas.
type ElectorConfig struct {
	Brokers []string
	// Group is the consumer group the replicas join; Topic must have one
	// partition: the member it is assigned to leads.
	Group, Topic string
	// SessionTimeout bounds how long a dead leader keeps the lead (6s);
	// HeartbeatInterval is how often members say they live (1s).
	SessionTimeout, HeartbeatInterval time.Duration
	// Security: TLS and SASL to the brokers; plaintext when zero.
	Security Security
}

// DefaultElectorConfig returns the defaults.
func DefaultElectorConfig(brokers []string, group, topic string) ElectorConfig {
	return ElectorConfig{Brokers: brokers, Group: group, Topic: topic, SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second}
}

func (c ElectorConfig) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("events: elector: no Brokers")
	case c.Group == "" || c.Topic == "":
		return errors.New("events: elector: Group and Topic are required")
	case c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout:
		return errors.New("events: elector: need 0 < HeartbeatInterval < SessionTimeout")
	}
	return nil
}

// Elector elects one leader among the replicas that run it: they join one
// consumer group on a one-partition topic, and the member holding the
// partition leads. A generation ends on rebalance (a replica joined or
// died); leading ends with it.
type Elector struct {
	cfg ElectorConfig
	log *slog.Logger
}

// NewElector checks the config.
func NewElector(cfg ElectorConfig, log *slog.Logger) (*Elector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Elector{cfg: cfg, log: log}, nil
}

// Run takes part in elections until ctx ends. Each time this replica is
// elected it calls lead with a context that ends when the generation does
// (or ctx), and waits for lead to return before it joins again.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: e.cfg.Group, Brokers: e.cfg.Brokers, Topics: []string{e.cfg.Topic},
		SessionTimeout: e.cfg.SessionTimeout, RebalanceTimeout: e.cfg.SessionTimeout, HeartbeatInterval: e.cfg.HeartbeatInterval,
		JoinGroupBackoff: time.Second, WatchPartitionChanges: false, Dialer: e.cfg.Security.dialer(),
		Logger: kafka.LoggerFunc(func(string, ...any) {}), ErrorLogger: kafka.LoggerFunc(func(string, ...any) {}),
	})
	if err != nil {
		return err
	}
	defer group.Close()
	for ctx.Err() == nil {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if len(gen.Assignments[e.cfg.Topic]) == 0 {
			e.log.Info("standing by", "generation", gen.ID)
			continue
		}
		done := make(chan struct{})
		gen.Start(func(gctx context.Context) {
			defer close(done)
			gctx, cancel := context.WithCancel(gctx)
			defer context.AfterFunc(ctx, cancel)()
			defer cancel()
			lead(gctx)
		})
		<-done
	}
	return nil
}
