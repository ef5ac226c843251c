package benchfleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// Result is one run's figures.
type Result struct {
	Nodes  int
	Broker string // "kfake" or the brokers
	// Phase is where the rollout was last seen; Problem says why it did not
	// finalize ("" when it did).
	Phase   schema.RolloutPhase
	Problem string
	// Elapsed is from publishing the create request to the rollout's last
	// decision; Soaks is what the plan spends soaking by design (gates ×
	// soak) when it finalized, 0 otherwise; Waves is the number of gates.
	Elapsed, Soaks time.Duration
	Waves          int
	// What the fleet counted: commands carried out, acks sent (duplicates
	// and refusals answered included), re-sent commands answered as
	// duplicates, commands refused, switch-back commands, health reports
	// sent on the interval (those after commands not included).
	Commands, Acks, Duplicates, Refused, SwitchBacks, Health int64
	// StateBytes and StateRecords were written to the state topic from the
	// create on (keys, values and headers).
	StateBytes, StateRecords int64
	// HeapBase is the process's HeapInuse after a collection with the fleet
	// built and running, before the create; HeapPeak the highest sampled
	// every 100 ms during the rollout.
	HeapBase, HeapPeak uint64
	// Floor is the raw floor for Nodes on the same broker: the median of
	// three tries.
	Floor time.Duration
	// CreateBytes is the size of the create-rollout request's body.
	CreateBytes int
}

// Finalized reports whether the rollout finalized without a switch-back.
func (r Result) Finalized() bool {
	return r.Phase == schema.PhaseFinalized && r.SwitchBacks == 0 && r.Problem == ""
}

// Active is Elapsed less the soaks: the time the rollout spent working.
func (r Result) Active() time.Duration { return r.Elapsed - r.Soaks }

// PerSecond is n over the active time.
func (r Result) PerSecond(n int64) float64 {
	if r.Active() <= 0 {
		return 0
	}
	return float64(n) / r.Active().Seconds()
}

// HeapGrowth is the peak less the baseline.
func (r Result) HeapGrowth() uint64 {
	if r.HeapPeak < r.HeapBase {
		return 0
	}
	return r.HeapPeak - r.HeapBase
}

// Round is one command -> ack round to every node: the active time over
// the commands each node got (install, activate, uninstall: 3).
func (r Result) Round() time.Duration {
	if r.Commands == 0 {
		return 0
	}
	return time.Duration(float64(r.Active()) * float64(r.Nodes) / float64(r.Commands))
}

// Ratio is Round over the raw floor.
func (r Result) Ratio() float64 {
	if r.Floor <= 0 {
		return 0
	}
	return float64(r.Round()) / float64(r.Floor)
}

const floorTries = 3

// Run measures one rollout to cfg.Nodes simulated agents: it starts the
// broker (unless cfg.Brokers names one), measures the raw floor, starts a
// coordinator and the fleet, creates the rollout and waits until it ends.
// A rollout that does not finalize is a Result with a Problem; an error
// means the run itself could not be made.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	res := Result{Nodes: cfg.Nodes, Broker: "kfake"}
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		kf, err := embeddedBroker()
		if err != nil {
			return res, err
		}
		defer kf.Close()
		brokers = kf.ListenAddrs()
	} else {
		res.Broker = strings.Join(brokers, ",")
	}
	prefix := "bench-" + randomID()[:12] + "."
	var err error

	// The floor of a small N is a few tens of milliseconds, and varies by
	// half from one try to the next: take the median of three.
	floors := make([]time.Duration, floorTries)
	for i := range floors {
		if floors[i], err = rawFloor(ctx, brokers, fmt.Sprintf("%sfloor%d.", prefix, i), cfg.Nodes, cfg.Partitions, log); err != nil {
			return res, fmt.Errorf("raw floor: %w", err)
		}
	}
	slices.Sort(floors)
	res.Floor = floors[floorTries/2]

	dir, err := os.MkdirTemp("", "regshift-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	c, pub, err := startCoordinator(ctx, brokers, prefix, cfg.Partitions, dir, log)
	if err != nil {
		return res, err
	}
	defer func() { deleteGroups(brokers, c.groups...); deleteTopics(brokers, c.topics) }() // once both stopped
	defer c.stop()
	keys := events.NewKeyring()
	if err := keys.Add(keyID, pub); err != nil {
		return res, err
	}
	p := plan(cfg.Nodes, cfg.Soak)
	f, err := newFleet(cfg.Nodes, p, brokers, c.topics, cfg.Partitions, keys, log.With("component", "bench-fleet"))
	if err != nil {
		return res, err
	}
	fctx, stopFleet := context.WithCancel(ctx)
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- f.Run(fctx, cfg.Health) }()
	defer func() { stopFleet(); <-fleetDone }()

	enc := &events.Encoder{Topics: c.topics, Source: "regshift/bench"}
	create, err := enc.Encode(&schema.CreateRollout{RequestHeader: schema.RequestHeader{RequestID: "bench-create", RolloutID: rolloutID,
		RequestedBy: "bench-fleet", RequestedAt: now()}, Plan: p})
	if err != nil {
		return res, err
	}
	res.CreateBytes = len(create.Value)

	res.HeapBase = heapInuse()
	heap := sampleHeap()
	state, err := countState(ctx, brokers, c.topics.State)
	if err != nil {
		heap.Stop()
		return res, err
	}
	start := time.Now()
	stopProgress := f.logProgress(ctx, start)
	defer stopProgress()
	var o outcome
	if err := f.prod.Publish(ctx, create); err != nil {
		o = outcome{at: time.Now(), why: fmt.Sprintf("publish the create request (%d bytes): %v", len(create.Value), err)}
	} else {
		o = c.watch(ctx, cfg.Timeout)
	}
	res.HeapPeak = heap.Stop()
	res.Phase, res.Problem, res.Waves = o.phase, o.why, o.waves
	res.Elapsed = o.at.Sub(start)
	if o.phase == schema.PhaseFinalized { // every gate passed, each after its soak
		res.Soaks = time.Duration(o.waves) * cfg.Soak
	}
	if res.StateBytes, res.StateRecords, err = state.Stop(context.WithoutCancel(ctx)); err != nil {
		log.Warn("state bytes undercounted", "err", err)
	}
	res.Commands, res.Acks, res.Duplicates = f.commands.Load(), f.acks.Load(), f.duplicates.Load()
	res.Refused, res.SwitchBacks, res.Health = f.refused.Load(), f.switchBacks.Load(), f.health.Load()
	return res, nil
}
