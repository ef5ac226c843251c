package events_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
)

// topicMaxBytes reads each topic's max.message.bytes from the broker.
func topicMaxBytes(t testing.TB, brokers []string, topics ...string) map[string]int {
	t.Helper()
	req := &kafka.DescribeConfigsRequest{}
	for _, topic := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic, ConfigNames: []string{"max.message.bytes"}})
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.DescribeConfigs(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			out[r.ResourceName], _ = strconv.Atoi(e.ConfigValue)
		}
	}
	return out
}

// TestBootstrapSetsSizeLimits: every topic gets its max.message.bytes
// explicitly, the dead-letter topic room for a dead-lettered request.
func TestBootstrapSetsSizeLimits(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		tp := bootstrap(t, brokers, nil)
		got := topicMaxBytes(t, brokers, tp.Commands, tp.Events, tp.Requests, tp.State, tp.DLQ)
		want := map[string]int{tp.Commands: 1 << 20, tp.Events: 1 << 20, tp.State: 1 << 20,
			tp.Requests: 16 << 20, tp.DLQ: 16<<20 + 64<<10}
		for topic, w := range want {
			if got[topic] != w {
				t.Errorf("%s: max.message.bytes=%d, want %d", topic, got[topic], w)
			}
		}
	})
}

// TestBootstrapRefusesATopicTooSmall: an existing requests topic with the
// broker's usual 1 MiB limit cannot carry a large create-rollout; Bootstrap
// says so, naming the topic, the setting, what it found and what it wants,
// and changes nothing.
func TestBootstrapRefusesATopicTooSmall(t *testing.T) {
	eachBroker(t, func(t *testing.T, brokers []string) {
		cfg := events.DefaultTopicsConfig()
		cfg.Prefix = prefix(t)
		requests := events.NewTopics(cfg.Prefix).Requests
		client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
		resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: requests, NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "1048576"}}}}})
		if err == nil {
			err = resp.Errors[requests]
		}
		if err != nil {
			t.Fatal(err)
		}
		tp, err := events.Bootstrap(context.Background(), brokers, cfg)
		t.Cleanup(func() {
			_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{
				Topics: []string{tp.Commands, tp.Events, requests, tp.State, tp.DLQ}})
		})
		if !errors.Is(err, events.ErrTopicMismatch) {
			t.Fatalf("Bootstrap = %v, want ErrTopicMismatch", err)
		}
		for _, part := range []string{requests, "max.message.bytes=1048576", "want at least 16777216"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not say %q", err, part)
			}
		}
		if got := topicMaxBytes(t, brokers, requests)[requests]; got != 1<<20 {
			t.Errorf("Bootstrap changed the topic: max.message.bytes=%d", got)
		}
	})
}
