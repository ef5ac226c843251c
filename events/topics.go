package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// Topics are the five topic names under one prefix.
type Topics struct {
	Commands, Events, Requests, State, DLQ string
}

// NewTopics names the topics under prefix, e.g. "regshift.".
func NewTopics(prefix string) Topics {
	return Topics{Commands: prefix + "commands", Events: prefix + "events", Requests: prefix + "requests",
		State: prefix + "state", DLQ: prefix + "dlq"}
}

// For is the topic a message class travels on.
func (t Topics) For(c schema.Class) string {
	switch c {
	case schema.ClassCommand:
		return t.Commands
	case schema.ClassEvent:
		return t.Events
	case schema.ClassRequest:
		return t.Requests
	case schema.ClassState:
		return t.State
	}
	return ""
}

// TopicsConfig sets how the topics are created.
type TopicsConfig struct {
	// Prefix of every topic name. Default "regshift.".
	Prefix string
	// CommandPartitions is P, fixed for the life of the topic: agents read
	// partition Partition(node, P). Default 12.
	CommandPartitions int
	// EventPartitions, RequestPartitions, DLQPartitions: defaults 6, 3, 3.
	EventPartitions, RequestPartitions, DLQPartitions int
	// ReplicationFactor of every topic. Default 1 (one broker); use 3 in production.
	ReplicationFactor int
	// MinInsyncReplicas for every topic (min.insync.replicas); 0 leaves the broker's default.
	MinInsyncReplicas int
	// DLQRetention is how long dead letters are kept. Default 30 days.
	DLQRetention time.Duration
	// MaxMessageBytes is the max.message.bytes of the commands, events and
	// state topics. Default DefaultMaxMessageBytes (1 MiB).
	MaxMessageBytes int
	// RequestMaxMessageBytes is the requests topic's max.message.bytes; the
	// dead-letter topic gets it plus DeadLetterHeadroom. Default
	// DefaultRequestMaxMessageBytes (16 MiB).
	RequestMaxMessageBytes int
	// Timeout bounds bootstrap, including waiting for partition leaders. Default 60s.
	Timeout time.Duration
	// Security: TLS and SASL to the brokers; plaintext when zero.
	Security Security
}

// DefaultTopicsConfig returns the defaults.
func DefaultTopicsConfig() TopicsConfig {
	return TopicsConfig{Prefix: "regshift.", CommandPartitions: 12, EventPartitions: 6, RequestPartitions: 3,
		DLQPartitions: 3, ReplicationFactor: 1, DLQRetention: 30 * 24 * time.Hour, Timeout: 60 * time.Second,
		MaxMessageBytes: DefaultMaxMessageBytes, RequestMaxMessageBytes: DefaultRequestMaxMessageBytes}
}

func (c TopicsConfig) validate() error {
	var errs []error
	if c.Prefix == "" {
		errs = append(errs, errors.New("no Prefix"))
	}
	for name, n := range map[string]int{"CommandPartitions": c.CommandPartitions, "EventPartitions": c.EventPartitions,
		"RequestPartitions": c.RequestPartitions, "DLQPartitions": c.DLQPartitions, "ReplicationFactor": c.ReplicationFactor} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, is %d", name, n))
		}
	}
	if c.MinInsyncReplicas < 0 || c.MinInsyncReplicas > c.ReplicationFactor {
		errs = append(errs, fmt.Errorf("MinInsyncReplicas %d outside 0..ReplicationFactor", c.MinInsyncReplicas))
	}
	if c.DLQRetention <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("need positive DLQRetention and Timeout"))
	}
	if c.MaxMessageBytes < 1 || c.RequestMaxMessageBytes < c.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("need MaxMessageBytes (%d) of at least 1 and RequestMaxMessageBytes (%d) of at least as much",
			c.MaxMessageBytes, c.RequestMaxMessageBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("events: TopicsConfig: %w", err)
	}
	return nil
}

// ErrTopicMismatch is returned when an existing topic differs from the
// configuration in a way regshift depends on (partition count of the
// commands and state topics, compaction of the state topic, a
// max.message.bytes below the configured one).
var ErrTopicMismatch = errors.New("existing topic differs from configuration")

const maxMessageBytes = "max.message.bytes"

func (c TopicsConfig) topicConfigs() []kafka.TopicConfig {
	t := NewTopics(c.Prefix)
	common := []kafka.ConfigEntry{}
	if c.MinInsyncReplicas > 0 {
		common = append(common, kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(c.MinInsyncReplicas)})
	}
	mk := func(name string, parts, maxBytes int, extra ...kafka.ConfigEntry) kafka.TopicConfig {
		entries := append(append([]kafka.ConfigEntry{}, common...), extra...)
		entries = append(entries, kafka.ConfigEntry{ConfigName: maxMessageBytes, ConfigValue: strconv.Itoa(maxBytes)})
		return kafka.TopicConfig{Topic: name, NumPartitions: parts, ReplicationFactor: c.ReplicationFactor, ConfigEntries: entries}
	}
	return []kafka.TopicConfig{
		mk(t.Commands, c.CommandPartitions, c.MaxMessageBytes),
		mk(t.Events, c.EventPartitions, c.MaxMessageBytes),
		mk(t.Requests, c.RequestPartitions, c.RequestMaxMessageBytes),
		mk(t.State, 1, c.MaxMessageBytes, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}),
		mk(t.DLQ, c.DLQPartitions, c.RequestMaxMessageBytes+DeadLetterHeadroom,
			kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(c.DLQRetention.Milliseconds(), 10)}),
	}
}

// Bootstrap creates the topics that do not exist yet, checks those that do
// (partitions, compaction, a max.message.bytes at least the configured
// one), and waits until every partition has a leader. Running it again is
// safe. It does not change an existing topic: a mismatch is an error
// wrapping ErrTopicMismatch that names the topic, the setting, what was
// found and what is wanted.
func Bootstrap(ctx context.Context, brokers []string, cfg TopicsConfig) (Topics, error) {
	if err := cfg.validate(); err != nil {
		return Topics{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: cfg.Security.transport()}
	topics := NewTopics(cfg.Prefix)
	want := cfg.topicConfigs()

	create := func() error {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: want})
		if err != nil {
			return retryOrStop(err)
		}
		var errs []error
		for name, err := range resp.Errors {
			if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create %s: %w", name, err))
			}
		}
		return retryOrStop(errors.Join(errs...))
	}
	if err := backoff.Retry(create, backoff.WithContext(backoff.NewExponentialBackOff(), ctx)); err != nil {
		return Topics{}, fmt.Errorf("events: bootstrap topics: %w", err)
	}
	ready := func() error {
		names := make([]string, len(want))
		for i, tc := range want {
			names[i] = tc.Topic
		}
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err != nil {
			return retryOrStop(err)
		}
		got := map[string]kafka.Topic{}
		for _, t := range md.Topics {
			got[t.Name] = t
		}
		for _, tc := range want {
			t, ok := got[tc.Topic]
			switch {
			case !ok || t.Error != nil:
				return fmt.Errorf("topic %s not ready: %v", tc.Topic, t.Error)
			case (tc.Topic == topics.Commands || tc.Topic == topics.State) && len(t.Partitions) != tc.NumPartitions:
				return backoff.Permanent(fmt.Errorf("%w: %s has %d partitions, want %d", ErrTopicMismatch, tc.Topic, len(t.Partitions), tc.NumPartitions))
			}
			for _, p := range t.Partitions {
				if p.Leader.ID < 0 || p.Error != nil {
					return fmt.Errorf("topic %s partition %d has no leader yet", tc.Topic, p.ID)
				}
			}
		}
		return checkConfigs(ctx, client, want, topics.State)
	}
	if err := backoff.Retry(ready, backoff.WithContext(backoff.NewExponentialBackOff(), ctx)); err != nil {
		return Topics{}, fmt.Errorf("events: bootstrap topics: %w", err)
	}
	return topics, nil
}

// checkConfigs reads the topics' configuration and compares it with want:
// the state topic compacted, max.message.bytes no smaller than wanted.
func checkConfigs(ctx context.Context, client *kafka.Client, want []kafka.TopicConfig, state string) error {
	req := &kafka.DescribeConfigsRequest{}
	wantBytes := map[string]int{}
	for _, tc := range want {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic,
			ResourceName: tc.Topic, ConfigNames: []string{"cleanup.policy", maxMessageBytes}})
		for _, e := range tc.ConfigEntries {
			if e.ConfigName == maxMessageBytes {
				wantBytes[tc.Topic], _ = strconv.Atoi(e.ConfigValue)
			}
		}
	}
	resp, err := client.DescribeConfigs(ctx, req)
	if err != nil {
		return retryOrStop(err)
	}
	var errs []error
	for _, r := range resp.Resources {
		if r.Error != nil {
			return retryOrStop(r.Error)
		}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "cleanup.policy":
				if r.ResourceName == state && e.ConfigValue != "compact" {
					errs = append(errs, fmt.Errorf("%w: %s has cleanup.policy=%s, want compact", ErrTopicMismatch, r.ResourceName, e.ConfigValue))
				}
			case maxMessageBytes:
				got, err := strconv.Atoi(e.ConfigValue)
				if wantN := wantBytes[r.ResourceName]; err != nil || got < wantN {
					errs = append(errs, fmt.Errorf("%w: %s has %s=%s, want at least %d (raise it: kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s=%d)",
						ErrTopicMismatch, r.ResourceName, maxMessageBytes, e.ConfigValue, wantN, r.ResourceName, maxMessageBytes, wantN))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return backoff.Permanent(err)
	}
	return nil
}

// retryOrStop marks errors that trying again will not cure as permanent.
func retryOrStop(err error) error {
	if err == nil || Retriable(err) {
		return err
	}
	return backoff.Permanent(err)
}

// PartitionCount asks the brokers how many partitions topic has; an agent
// needs it for the commands topic to find its partition.
func PartitionCount(ctx context.Context, sec Security, brokers []string, topic string) (int, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: sec.transport()}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, t.Error
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("topic %s not found", topic)
}
