package events

import (
	"hash/fnv"
	"slices"

	"github.com/segmentio/kafka-go"
)

// Partition is the partition of key among n partitions: the 32-bit FNV-1a
// hash of the key's bytes, modulo n. Agents call it with their node id and
// the commands topic's partition count to find the one partition they read;
// a system in another language reproduces it in a few lines.
func Partition(key []byte, n int) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// KeyBalancer routes each record to Partition(key, number of partitions).
// kafka-go's Writer ignores Message.Partition, so this is how the producer
// and the agents agree.
type KeyBalancer struct{}

// Balance implements kafka.Balancer.
func (KeyBalancer) Balance(msg kafka.Message, partitions ...int) int {
	p := Partition(msg.Key, len(partitions))
	if slices.Contains(partitions, p) {
		return p
	}
	return partitions[p] // partition ids not 0..n-1: fall back to position
}

var _ kafka.Balancer = KeyBalancer{}
