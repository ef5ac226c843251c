package benchfleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// Bursts are the largest complete burst of each command kind (install,
	// activate, uninstall), in that order; see burst.
	Bursts []Burst
	// Split: the coordinator ran in a child process. CoordBase is its
	// HeapInuse after a collection just before the create, CoordPeak the
	// highest it sampled every 100 ms from then to the rollout's end.
	Split                bool
	CoordBase, CoordPeak uint64
	// Signed: each node signed its events with its own key (not
	// Config.UnsignedEvents). KeysGenerated is generating the Nodes keys,
	// KeysWritten writing their .pub files for the coordinator, both on
	// every core.
	Signed                     bool
	KeysGenerated, KeysWritten time.Duration
	// DeadEvents is how many of the fleet's events the coordinator
	// dead-lettered (its regshift_events_dead_letters_total for the events
	// topic at the rollout's end); -1 when its metrics could not be read.
	DeadEvents float64
}

// Burst is one burst's round and what explains it.
type Burst struct {
	Kind     schema.CommandKind
	Name     string // which wave or stage
	Nodes    int
	Commands int // command records of the burst the fleet carried out
	// Round is from the coordinator stamping the burst's first command to
	// it persisting the fold of the last ack; LastAck from the same start
	// to the fleet queueing the last ack.
	Round, LastAck time.Duration
	// Floor is the raw floor at Nodes records, measured as Result.Floor.
	Floor time.Duration
	// What the burst's work costs at this machine's unit costs, one after
	// the other: signing and encoding its commands, verifying them, and
	// encoding the state records the coordinator stamped inside the round.
	Sign, Encode, Verify, State time.Duration
	StateRecords, StateBytes    int64
	// VerifyEvents is the coordinator decoding (verifying) the events the
	// fleet published within the round, Acks acks and Health health reports
	// (of any node, by their ce_time); SignEvents the fleet signing them.
	VerifyEvents, SignEvents time.Duration
	Acks, Health             int64
}

// Rest is what the unit costs and the floor do not explain.
func (b Burst) Rest() time.Duration {
	return b.Round - b.Floor - b.Sign - b.Encode - b.Verify - b.State - b.VerifyEvents - b.SignEvents
}

// Ratio is the round over the raw floor at the burst's size.
func (b Burst) Ratio() float64 {
	if b.Floor <= 0 {
		return 0
	}
	return float64(b.Round) / float64(b.Floor)
}

// Largest is the burst of the most nodes (the slower of two the same
// size); zero when no burst completed.
func (r Result) Largest() Burst {
	var best Burst
	for _, b := range r.Bursts {
		if b.Nodes > best.Nodes || b.Nodes == best.Nodes && b.Round > best.Round {
			best = b
		}
	}
	return best
}

// CoordGrowth is the coordinator child's peak less its baseline.
func (r Result) CoordGrowth() uint64 {
	if r.CoordPeak < r.CoordBase {
		return 0
	}
	return r.CoordPeak - r.CoordBase
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

// MeanRound is one command -> ack round to every node as the old ratio
// estimates it: the active time over the commands each node got (install,
// activate, uninstall: 3), gates' waits included.
func (r Result) MeanRound() time.Duration {
	if r.Commands == 0 {
		return 0
	}
	return time.Duration(float64(r.Active()) * float64(r.Nodes) / float64(r.Commands))
}

// Ratio is MeanRound over the raw floor.
func (r Result) Ratio() float64 {
	if r.Floor <= 0 {
		return 0
	}
	return float64(r.MeanRound()) / float64(r.Floor)
}

const floorTries = 3

// medianFloor is the median of floorTries raw floors of n records: the
// floor of a small n is a few tens of milliseconds, and varies by half
// from one try to the next.
func medianFloor(ctx context.Context, brokers []string, prefix string, n, partitions int, log *slog.Logger) (time.Duration, error) {
	floors := make([]time.Duration, floorTries)
	for i := range floors {
		var err error
		if floors[i], err = rawFloor(ctx, brokers, fmt.Sprintf("%s%d.", prefix, i), n, partitions, log); err != nil {
			return 0, err
		}
	}
	slices.Sort(floors)
	return floors[floorTries/2], nil
}

// account explains a burst's round with the run's unit costs.
func account(b burst, floor time.Duration, c unitCosts, state *stateCounter, events *published) Burst {
	out := Burst{Kind: b.key.kind, Name: b.name, Nodes: b.nodes, Commands: b.commands, Round: b.took(), LastAck: b.lastAck.Sub(b.sent),
		Floor: floor}
	n := time.Duration(b.commands)
	out.Sign, out.Encode, out.Verify = n*c.sign[b.key.kind], n*c.encode[b.key.kind], n*c.verify[b.key.kind]
	out.StateRecords, out.StateBytes = state.within(b.sent, b.folded)
	out.State = time.Duration(out.StateRecords) * c.state
	out.Acks, out.Health = events.within(b.sent, b.folded)
	out.VerifyEvents = time.Duration(out.Acks)*c.verifyAck + time.Duration(out.Health)*c.verifyHealth
	out.SignEvents = time.Duration(out.Acks)*c.signAck + time.Duration(out.Health)*c.signHealth
	return out
}

// Run measures one rollout to cfg.Nodes simulated agents: it starts the
// broker (unless cfg.Brokers names one), measures the raw floor, starts a
// coordinator and the fleet, creates the rollout and waits until it ends.
// A rollout that does not finalize is a Result with a Problem; an error
// means the run itself could not be made.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	res := Result{Nodes: cfg.Nodes, Broker: "kfake", Split: cfg.Split, Signed: !cfg.UnsignedEvents}
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

	// The floor at N, and at the size of each kind's largest burst.
	p := plan(cfg.Nodes, cfg.Soak)
	floors := map[int]time.Duration{}
	for _, n := range append([]int{cfg.Nodes}, largestSizes(p)...) {
		if _, ok := floors[n]; ok || n == 0 {
			continue
		}
		if floors[n], err = medianFloor(ctx, brokers, fmt.Sprintf("%sfloor%d-", prefix, n), n, cfg.Partitions, log); err != nil {
			return res, fmt.Errorf("raw floor: %w", err)
		}
	}
	res.Floor = floors[cfg.Nodes]
	costs, err := measureCosts(events.NewTopics(prefix), p, cfg.UnsignedEvents)
	if err != nil {
		return res, fmt.Errorf("unit costs: %w", err)
	}

	dir, err := os.MkdirTemp("", "regshift-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var signing *nodeKeys // nil: unsigned
	keysDir := ""
	if !cfg.UnsignedEvents {
		if signing, err = generateKeys(cfg.Nodes); err != nil {
			return res, fmt.Errorf("node keys: %w", err)
		}
		keysDir = filepath.Join(dir, "nodes")
		if err := os.Mkdir(keysDir, 0o700); err != nil {
			return res, err
		}
		if err := signing.writePublic(keysDir); err != nil {
			return res, fmt.Errorf("node keys: %w", err)
		}
		res.KeysGenerated, res.KeysWritten = signing.generated, signing.written
	}
	c, pub, err := startCoordinator(ctx, brokers, prefix, cfg.Partitions, dir, keysDir, cfg.Split, cfg.command, log)
	if err != nil {
		return res, err
	}
	defer func() { deleteGroups(brokers, c.groups...); deleteTopics(brokers, c.topics) }() // once both stopped
	defer c.stop()
	if cfg.OnAPI != nil {
		cfg.OnAPI(c.api)
	}
	keys := events.NewKeyring()
	if err := keys.Add(keyID, pub); err != nil {
		return res, err
	}
	f, err := newFleet(cfg.Nodes, p, brokers, c.topics, cfg.Partitions, keys, signing, log.With("component", "bench-fleet"))
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

	if c.child != nil {
		if res.CoordBase, err = c.child.heap("baseline"); err != nil {
			return res, err
		}
	}
	res.HeapBase = heapInuse()
	heap := sampleHeap()
	state, err := countState(ctx, brokers, c.topics.State, f.rounds)
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
	if res.DeadEvents, err = c.deadLettersOf(ctx, c.topics.Events); err != nil {
		res.DeadEvents = -1
		log.Warn("dead-lettered events not counted", "err", err)
	}
	if c.child != nil {
		if res.CoordPeak, err = c.child.heap("peak"); err != nil {
			log.Warn("coordinator heap not measured", "err", err)
		}
	}
	res.Phase, res.Problem, res.Waves = o.phase, o.why, o.waves
	res.Elapsed = o.at.Sub(start)
	if o.phase == schema.PhaseFinalized { // every gate passed, each after its soak
		res.Soaks = time.Duration(o.waves) * cfg.Soak
	}
	if res.StateBytes, res.StateRecords, err = state.Stop(ctx); err != nil {
		log.Warn("state bytes undercounted", "err", err)
	}
	for _, b := range f.rounds.largest() {
		res.Bursts = append(res.Bursts, account(b, floors[b.nodes], costs, state, f.events))
	}
	res.Commands, res.Acks, res.Duplicates = f.commands.Load(), f.acks.Load(), f.duplicates.Load()
	res.Refused, res.SwitchBacks, res.Health = f.refused.Load(), f.switchBacks.Load(), f.health.Load()
	return res, nil
}
