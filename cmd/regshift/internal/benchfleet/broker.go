package benchfleet

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/events"
)

// embeddedBroker starts an in-process Kafka-protocol broker (franz-go's
// kfake) holding everything in memory.
func embeddedBroker() (*kfake.Cluster, error) {
	return kfake.NewCluster(kfake.NumBrokers(1))
}

// deleteTopics deletes the five topics under one prefix, best effort.
func deleteTopics(brokers []string, t events.Topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{t.Commands, t.Events, t.Requests, t.State, t.DLQ}})
}

// deleteGroups deletes consumer groups, best effort: they must be empty,
// so call it once their members stopped.
func deleteGroups(brokers []string, groups ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: groups})
}
