package coordinator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/regshift/regshift/schema"
)

// The core's vocabulary is the state records': schema owns one type per
// concept (a rollout head, a node, a pending command, a decision, a phase),
// so a field added to a record is a field of the rollout, and what a leader
// persists is exactly what the next one folds into.
type (
	// Phase is where a rollout is.
	Phase = schema.RolloutPhase
	// Progress is how far a node got, as acked by its agent.
	Progress = schema.Progress
	// Command is one command to send (or send again) to a node's agent. Its
	// ID is derived from the intent (rollout, node, kind), so a re-send
	// always carries the original id and an agent applies it once.
	Command = schema.CommandRef
	// Pending is a command sent and not yet answered.
	Pending = schema.PendingCommand
	// RegistryReport is what the runtime measured of the registry side: the
	// new registry answers and is healthy, the bridge runs, and the parity
	// of the new registry's instance sets against the old one's.
	RegistryReport = schema.RegistryReport
	// Decision records one decision with the inputs it was made on.
	Decision = schema.Decision
	// Wave is one wave of the rollout: its role and size.
	Wave = schema.WaveRecord
)

// Node is the coordinator's view of one node of the plan: its durable
// record and the health it last reported for the new interface. Health is
// soft state — a report is evidence only to the leader that received it
// (never persisted; a new leader starts from unknown and waits for fresh
// reports). No report is "unknown", never healthy.
type Node struct {
	schema.NodeRecord
	Health       schema.HealthStatus `json:"health"`
	HealthDetail string              `json:"health_detail,omitempty"` // the report's detail, within maxReason
	HealthAt     time.Time           `json:"health_at,omitzero"`
}

// ProgressName names a progress for people: "none" for none.
func ProgressName(p Progress) string {
	if p == schema.ReachedNone {
		return "none"
	}
	return string(p)
}

// WaveTarget is the progress a wave's nodes head for in phase p, and its
// name.
func WaveTarget(p Phase) (Progress, string) {
	switch p {
	case schema.PhaseSwitchingBack, schema.PhaseSwitchedBack:
		return schema.ReachedSwitchedBack, "switched back"
	case schema.PhaseFinalizing, schema.PhaseFinalized:
		return schema.ReachedUninstalled, "uninstalled"
	}
	return schema.ReachedActive, "active"
}

// Healthy reports what the gates count as healthy: active on the new
// interface and reported passing or warning since the activation.
func (n *Node) Healthy() bool { return healthy(n) }

func provider(n *Node) bool { return slices.Contains(n.Roles, schema.RoleProvider) }

// healthy: active, and working on the new interface since activation:
// passing, or warning (it answers and holds this node's registrations, but
// disagrees with the old interface on a consumed service — the node falls
// back for that service, and the registry-wide parity gate judges the
// disagreement). Critical and unknown are never healthy.
func healthy(n *Node) bool {
	working := n.Health == schema.HealthPassing || n.Health == schema.HealthWarning
	return n.Reached == schema.ReachedActive && working && !n.HealthAt.Before(n.ActiveAt)
}

// Rollout is the whole state of one rollout: its head record, its nodes
// (each a record of its own plus soft health), and lookups and counters
// derived from them so that an ack or a health report costs O(1). Step
// folds inputs into it; TakeDirty tells the runtime which records to write.
type Rollout struct {
	schema.RolloutRecord
	Nodes []Node `json:"nodes"` // in plan order

	d derived
}

// derived is rebuilt from the records (build) and kept in step by every
// change Step makes; none of it is persisted.
type derived struct {
	built bool
	index map[string]int // node id -> position in Nodes
	waves [][]int        // each wave's nodes

	// The current wave while rolling: nodes ready for their next command
	// (queued marks them), commands in flight, nodes not yet settled
	// (pending, or neither failed nor active), and failed nodes.
	wave      int
	pos       []int // each node's position in its wave
	ready     readyQueue
	queued    []bool
	judged    []bool // active and past the activation grace: critical reports count
	inflight  int
	unsettled int
	failed    map[int]bool

	// The current stage while switching back or finalizing: nodes that
	// have not reached the stage's step.
	stage          string
	stageRemaining int

	headDirty bool
	dirty     map[int]bool
}

// Node returns the named node, or nil. The pointer is into Nodes.
func (r *Rollout) Node(id string) *Node {
	if i, ok := r.nodeIndex(id); ok {
		return &r.Nodes[i]
	}
	return nil
}

func (r *Rollout) nodeIndex(id string) (int, bool) {
	r.build()
	i, ok := r.d.index[id]
	return i, ok
}

// Clone returns a deep copy: nothing a Step on one changes is seen by the
// other. (Roles and the plan are never changed after creation, so they are
// shared.)
func (r *Rollout) Clone() Rollout {
	c := Rollout{RolloutRecord: r.RolloutRecord}
	c.Waves = slices.Clone(r.Waves)
	c.Nodes = slices.Clone(r.Nodes)
	for i := range c.Nodes {
		if p := c.Nodes[i].Pending; p != nil {
			cp := *p
			c.Nodes[i].Pending = &cp
		}
	}
	c.Decisions = slices.Clone(r.Decisions)
	for i := range c.Decisions {
		c.Decisions[i].Nodes = slices.Clone(c.Decisions[i].Nodes)
	}
	return c
}

// Dirty is what changed since the last TakeDirty: the head, and nodes by
// position.
type Dirty struct {
	Head  bool
	Nodes []int // sorted
}

// TakeDirty returns what changed since it was last called and forgets it;
// the runtime writes those records (head, then nodes) before it sends the
// commands of the same steps.
func (r *Rollout) TakeDirty() Dirty {
	d := Dirty{Head: r.d.headDirty, Nodes: slices.Sorted(maps.Keys(r.d.dirty))}
	r.d.headDirty = false
	clear(r.d.dirty)
	return d
}

// NodeRecord is node i's durable record.
func (r *Rollout) NodeRecord(i int) schema.NodeRecord { return r.Nodes[i].NodeRecord }

// BridgeAction tells the runtime to start or stop the bridge.
type BridgeAction string

// Bridge actions.
const (
	BridgeStart BridgeAction = "start"
	BridgeStop  BridgeAction = "stop"
)

// Output is what one Step asks the runtime to do: persist the rollout, then
// send the commands; start or stop the bridge; log the decisions and the
// inputs it refused.
type Output struct {
	Commands  []Command
	Decisions []Decision
	Bridge    BridgeAction
	Refused   []Refused
}

// Refusal names why Step set an input aside without acting on it.
type Refusal string

// Refusals.
const (
	// RefusedOtherRollout: an ack whose rollout id is not this rollout's.
	RefusedOtherRollout Refusal = "other-rollout"
	// RefusedFutureEpoch: an ack whose epoch is above this rollout's
	// leader epoch — no command this rollout sent carried it.
	RefusedFutureEpoch Refusal = "future-epoch"
)

// Refused is an input Step set aside, and why. It changes nothing and is
// not persisted: the runtime logs and counts it.
type Refused struct {
	Node    string
	Command string
	Why     Refusal
	Detail  string
}

// NewRollout starts a rollout of a validated plan: it asks the runtime to
// start the bridge and waits in PhasePreparing for a registry report. Every
// record of the new rollout is dirty.
func NewRollout(id string, p schema.Plan, epoch uint64, now time.Time) (Rollout, Output, error) {
	if err := ValidatePlan(p); err != nil {
		return Rollout{}, Output{}, err
	}
	planned := PlanWaves(p)
	head := p
	head.Nodes = nil
	r := Rollout{RolloutRecord: schema.RolloutRecord{ID: id, Plan: head, NodeCount: len(p.Nodes), Epoch: epoch,
		Phase: schema.PhasePreparing, Created: now, Now: now}}
	wave := make(map[string]int, len(p.Nodes))
	for i, w := range planned {
		r.Waves = append(r.Waves, Wave{Role: w.Role, Size: len(w.Nodes)})
		for _, n := range w.Nodes {
			wave[n] = i
		}
	}
	r.Nodes = make([]Node, 0, len(p.Nodes)) // one array: Node's pointers into it stay valid
	for i, n := range p.Nodes {
		r.Nodes = append(r.Nodes, Node{NodeRecord: schema.NodeRecord{RolloutID: id, Index: i, ID: n.NodeID,
			Roles: slices.Clone(n.Roles), Wave: wave[n.NodeID]}, Health: schema.HealthUnknown})
	}
	r.build()
	r.d.headDirty = true
	for i := range r.Nodes {
		r.d.dirty[i] = true
	}
	var out Output
	out.Bridge = BridgeStart
	r.decide(&out, Decision{Decision: schema.DecisionCreated, Detail: fmt.Sprintf("%d nodes in %d waves", len(r.Nodes), len(r.Waves))})
	return r, out, nil
}

// CommandID is the id of the command of one intent: rollout:node:kind,
// shortened with a hash of the whole when it passes the 128 characters ids
// may have.
func CommandID(rollout, node string, kind schema.CommandKind) string {
	id := rollout + ":" + node + ":" + string(kind)
	if len(id) <= 128 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:100] + "." + hex.EncodeToString(sum[:])[:27]
}

func (r *Rollout) command(n *Node, kind schema.CommandKind) Command {
	c := Command{ID: CommandID(r.ID, n.ID, kind), Node: n.ID, Kind: kind}
	switch kind {
	case schema.CommandInstall, schema.CommandActivate:
		c.Interface = r.Plan.To.Name
	case schema.CommandSwitchBack:
		c.Interface, c.To = r.Plan.To.Name, r.Plan.From.Name
	case schema.CommandUninstall:
		c.Interface = r.Plan.From.Name
	}
	return c
}

// decide records a decision, bounded where it is built: at most
// MaxDecisionNodes node ids (NodeCount keeps the number), a detail within
// MaxDetail, a refusal identical to the last decision folded into it
// (Repeated), and the log capped at MaxDecisions (EarlierDecisions counts
// what was dropped).
func (r *Rollout) decide(out *Output, d Decision) {
	d.At = r.Now
	if len(d.Nodes) > schema.MaxDecisionNodes {
		d.NodeCount = len(d.Nodes)
		d.Nodes = slices.Clone(d.Nodes[:schema.MaxDecisionNodes])
	}
	d.Detail = schema.Truncate(d.Detail, schema.MaxDetail)
	r.d.headDirty = true
	out.Decisions = append(out.Decisions, d)
	if n := len(r.Decisions); n > 0 && d.Decision == schema.DecisionRequestRefused {
		if last := &r.Decisions[n-1]; last.Decision == d.Decision && last.Check == d.Check && last.Detail == d.Detail {
			last.Repeated++
			last.At = d.At
			return
		}
	}
	r.Decisions = append(r.Decisions, d)
	if over := len(r.Decisions) - schema.MaxDecisions; over > 0 {
		r.Decisions = slices.Delete(r.Decisions, 0, over)
		r.EarlierDecisions += over
	}
}

func ptr(f float64) *float64 { return &f }

// MarkDirty marks again what a TakeDirty returned: the runtime could not
// write those records.
func (r *Rollout) MarkDirty(d Dirty) {
	r.build()
	r.d.headDirty = r.d.headDirty || d.Head
	for _, i := range d.Nodes {
		r.d.dirty[i] = true
	}
}

// Adopt is a new leader's takeover of the rollout at now under epoch:
// every command from now on carries the epoch, and the registry side is
// judged only on reports taken under it, given the ack timeout from now to
// show itself again (a new leader's bridge starts afresh).
func (r *Rollout) Adopt(epoch uint64, now time.Time) {
	r.build()
	r.Epoch, r.EpochSince = epoch, now
	r.d.headDirty = true
}

// Halt holds the rollout after a step of it failed — a panic the runtime
// recovered — and records why: a held decision on CheckStep, its detail
// within MaxDetail. What the failed step changed stays (a record may be
// half-updated); the lookups and counters are rebuilt from the records on
// their next use. The runtime folds nothing but requests into a halted
// rollout: resume clears the hold, abort switches back.
func (r *Rollout) Halt(why string) Output {
	r.d = derived{headDirty: r.d.headDirty, dirty: r.d.dirty}
	r.Held = true
	var out Output
	r.decide(&out, Decision{Decision: schema.DecisionHeld, Check: schema.CheckStep,
		Detail: "a step failed; held until resume (or abort): " + why})
	return out
}

// halted reports whether the rollout is held by Halt rather than by a gate:
// its latest held decision is on CheckStep.
func (r *Rollout) halted() bool {
	for i := len(r.Decisions) - 1; i >= 0; i-- {
		if d := r.Decisions[i]; d.Decision == schema.DecisionHeld {
			return r.Held && d.Check == schema.CheckStep
		}
	}
	return false
}
