package benchfleet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// fleet is N simulated agents. Each node belongs to one commands partition
// and so to one reader goroutine, which alone writes the node's replay
// state; the health reporter reads only the node's atomic phase.
type fleet struct {
	nodes  []node // in id order, one array
	byID   map[string]*node
	from   string // the interface names the plan moves between
	to     string
	topics events.Topics
	out    *batcher
	prod   *events.Producer
	evm    *events.Metrics
	rounds *rounds
	events *published
	log    *slog.Logger

	brokers    []string
	partitions int

	commands, acks, duplicates, refused, switchBacks, health atomic.Int64
}

// node is one simulated agent's state.
type node struct {
	id       string
	index    int
	provider bool
	source   string             // ce_source of what it publishes
	key      ed25519.PrivateKey // signs what it publishes, key id = id; nil: unsigned
	verifier *events.CommandVerifier

	// The replay state the verifier reads, owned by the node's reader: the
	// highest epoch seen and the ids (FNV-64) of the last commands applied.
	epoch   uint64
	applied [4]uint64
	next    int

	phase atomic.Uint32 // a nodePhase
}

// nodePhase is where a node's two interfaces are.
type nodePhase uint32

const (
	onOld        nodePhase = iota // the old interface active, the new absent
	installed                     // the new installed beside the old
	onNew                         // the new active, the old on standby
	uninstalled                   // the old removed
	switchedBack                  // the old active again, the new on standby
)

// nodeID names node i; ids sort in index order.
func nodeID(i int) string { return fmt.Sprintf("node-%06d", i) }

// newFleet builds n nodes trusting the coordinator keys in keys, node i
// signing with nodeKeys.priv[i] (nodeKeys nil: unsigned); even indexes
// provide, odd ones consume.
func newFleet(n int, p schema.Plan, brokers []string, topics events.Topics, partitions int, keys *events.Keyring, nodeKeys *nodeKeys,
	log *slog.Logger) (*fleet, error) {
	evm, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	prod, err := events.NewProducer(producerConfig(brokers), log, evm)
	if err != nil {
		return nil, err
	}
	f := &fleet{nodes: make([]node, n), byID: make(map[string]*node, n), from: p.From.Name, to: p.To.Name, topics: topics,
		out: newBatcher(prod, log), prod: prod, evm: evm, rounds: newRounds(p), events: newPublished(time.Now()), log: log, brokers: brokers, partitions: partitions}
	for i := range f.nodes {
		nd := &f.nodes[i]
		nd.id, nd.index, nd.provider = nodeID(i), i, i%2 == 0
		nd.source = "regshift/agent/" + nd.id
		if nodeKeys != nil {
			nd.key = nodeKeys.priv[i]
		}
		if nd.verifier, err = events.NewCommandVerifier(events.DefaultCommandVerifierConfig(nd.id), keys, nd); err != nil {
			_ = prod.Close()
			return nil, err
		}
		f.byID[nd.id] = nd
	}
	if err := f.checkWire(); err != nil {
		_ = prod.Close()
		return nil, err
	}
	return f, nil
}

// producerConfig is the publishers' (the fleet's and the raw floor's):
// the events defaults with batches of up to 1,000 records a partition.
func producerConfig(brokers []string) events.ProducerConfig {
	cfg := events.DefaultProducerConfig(brokers)
	cfg.BatchSize = 1000
	return cfg
}

// Run reads every commands partition, publishes the answers and reports
// health every interval (0: only after commands) until ctx ends.
func (f *fleet) Run(ctx context.Context, every time.Duration) error {
	defer f.prod.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.out.Run(gctx) })
	for p := range f.partitions {
		ccfg := events.DefaultConsumerConfig(f.brokers, f.topics.Commands, f.topics.DLQ)
		c, err := events.NewPartitionConsumer(ccfg, p, fromStart{}, commandDecoder{f}, f.handle, f.prod, f.log, f.evm)
		if err != nil {
			return err
		}
		g.Go(func() error { return c.WithName(fmt.Sprintf("bench-fleet-%d", p)).Run(gctx) })
	}
	if every > 0 {
		g.Go(func() error { f.reportHealth(gctx, every); return nil })
	}
	return g.Wait()
}

// fromStart reads a partition from its first record and keeps no position.
type fromStart struct{}

func (fromStart) Load(context.Context) (int64, error) { return kafka.FirstOffset, nil }
func (fromStart) Save(context.Context, int64) error   { return nil }

var _ events.OffsetStore = fromStart{}

// logProgress logs the fleet's counts every 10 s (at info) until stopped.
func (f *fleet) logProgress(ctx context.Context, start time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			f.log.Info("progress", "since_create", time.Since(start).Round(time.Second).String(), "commands", f.commands.Load(),
				"acks", f.acks.Load(), "duplicates", f.duplicates.Load(), "health", f.health.Load(), "queued", len(f.out.in))
		}
	}()
	return cancel
}
