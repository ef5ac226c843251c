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

// The core's vocabulary is the state record's: schema owns one type per
// concept (a rollout record, a node, a pending command, a decision, a
// phase), so a field added to the record is a field of the rollout, and
// what a leader persists is exactly what the next one folds into.
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
	// Node is the coordinator's view of one node of the plan.
	Node = schema.NodeRecord
	// RegistryReport is what the runtime measured of the registry side: the
	// new registry answers and is healthy, the bridge runs, and the parity
	// of the new registry's instance sets against the old one's.
	RegistryReport = schema.RegistryReport
	// Decision records one decision with the inputs it was made on.
	Decision = schema.Decision
	// Wave is one wave: nodes of one role moved together.
	Wave = schema.WaveRecord
)

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

// Rollout is the whole state of one rollout: its durable record (what the
// state topic holds, field for field) and lookups built from it. Step folds
// inputs into it.
type Rollout struct {
	schema.RolloutRecord

	index     map[string]int // Node's lookup, built on first use
	waveNodes [][]*Node      // wave's, likewise: pointers into Nodes, whose backing array is never reallocated
}

// FromRecord is the rollout a state record holds.
func FromRecord(rec schema.RolloutRecord) Rollout { return Rollout{RolloutRecord: rec} }

// Node returns the named node, or nil. The pointer is into the rollout's
// node list: valid until the rollout is replaced.
func (r *Rollout) Node(id string) *Node {
	if len(r.index) != len(r.Nodes) {
		r.index = make(map[string]int, len(r.Nodes))
		for i := range r.Nodes {
			r.index[r.Nodes[i].ID] = i
		}
	}
	i, ok := r.index[id]
	if !ok {
		return nil
	}
	return &r.Nodes[i]
}

// Clone returns a deep copy: nothing a Step on one changes is seen by the
// other. (Roles, wave node lists and the plan are never changed after
// creation, so they are shared.)
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

// BridgeAction tells the runtime to start or stop the bridge.
type BridgeAction string

// Bridge actions.
const (
	BridgeStart BridgeAction = "start"
	BridgeStop  BridgeAction = "stop"
)

// Output is what one Step asks the runtime to do: persist the rollout, then
// send the commands; start or stop the bridge; log the decisions.
type Output struct {
	Commands  []Command
	Decisions []Decision
	Bridge    BridgeAction
}

// NewRollout starts a rollout of a validated plan: it asks the runtime to
// start the bridge and waits in schema.PhasePreparing for a registry report.
func NewRollout(id string, p schema.Plan, epoch uint64, now time.Time) (Rollout, Output, error) {
	if err := ValidatePlan(p); err != nil {
		return Rollout{}, Output{}, err
	}
	r := Rollout{RolloutRecord: schema.RolloutRecord{ID: id, Plan: p, Epoch: epoch, Phase: schema.PhasePreparing, Waves: PlanWaves(p),
		Created: now, Now: now}}
	wave := map[string]int{}
	for i, w := range r.Waves {
		for _, n := range w.Nodes {
			wave[n] = i
		}
	}
	r.Nodes = make([]Node, 0, len(p.Nodes)) // one array: Node's pointers into it stay valid
	for _, n := range p.Nodes {
		r.Nodes = append(r.Nodes, Node{ID: n.NodeID, Roles: slices.Clone(n.Roles), Wave: wave[n.NodeID], Health: schema.HealthUnknown})
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

func (r *Rollout) decide(out *Output, d Decision) {
	d.At = r.Now
	r.Decisions = append(r.Decisions, d)
	out.Decisions = append(out.Decisions, d)
}

func ptr(f float64) *float64 { return &f }

// sortedKeys is used for stable decision records.
func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
