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

// Phase is where a rollout is.
type Phase string

// Phases, in their usual order. Failed, SwitchedBack and Finalized end a
// rollout.
const (
	PhasePreparing     Phase = "preparing"      // new registry checked, bridge started, parity measured
	PhaseRolling       Phase = "rolling"        // waves: install + activate, gates after each
	PhaseCommitted     Phase = "committed"      // new interface primary everywhere; switch-back still instant
	PhaseFinalizing    Phase = "finalizing"     // uninstalling the old interface, consumers first
	PhaseFinalized     Phase = "finalized"      // old interface gone, bridge stopped
	PhaseSwitchingBack Phase = "switching-back" // returning every touched node, consumers first
	PhaseSwitchedBack  Phase = "switched-back"  // every touched node on the old interface, bridge stopped
	PhaseFailed        Phase = "failed"         // could not prepare; no node was touched
)

// Ended reports whether the rollout is over.
func (p Phase) Ended() bool {
	return p == PhaseFinalized || p == PhaseSwitchedBack || p == PhaseFailed
}

// Progress is how far a node got, as acked by its agent.
type Progress string

// Progress of a node.
const (
	ReachedNone         Progress = ""
	ReachedInstalled    Progress = "installed"
	ReachedActive       Progress = "active"
	ReachedSwitchedBack Progress = "switched-back"
	ReachedUninstalled  Progress = "uninstalled"
)

// Command kinds the coordinator sends.
const (
	KindInstall    = "install"
	KindActivate   = "activate"
	KindSwitchBack = "switch-back"
	KindUninstall  = "uninstall"
)

// Command is one command to send (or send again) to a node's agent. Its ID
// is derived from the intent (rollout, node, kind), so a re-send always
// carries the original id and an agent applies it once.
type Command struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	Kind      string `json:"kind"`
	Interface string `json:"interface"`    // what the command is about
	To        string `json:"to,omitempty"` // switch-back: the interface to return to
}

// Pending is a command sent and not yet answered.
type Pending struct {
	Command   Command   `json:"command"`
	FirstSent time.Time `json:"first_sent"`
	LastSent  time.Time `json:"last_sent"`
	Sends     int       `json:"sends"`
}

// Node is the coordinator's view of one node of the plan.
type Node struct {
	ID      string   `json:"id"`
	Roles   []string `json:"roles"`
	Wave    int      `json:"wave"`
	Reached Progress `json:"reached"`
	// ActiveAt is when the activate ack arrived: only health observed after
	// it counts.
	ActiveAt time.Time `json:"active_at,omitzero"`
	Touched  bool      `json:"touched"` // was sent any command
	Pending  *Pending  `json:"pending,omitempty"`
	// Failure says why the node failed its wave (ack failed, rejected or
	// timed out); empty while it is fine.
	Failure string `json:"failure,omitempty"`
	// Health is the last status the node reported for the new interface;
	// HealthAt when. No report is "unknown", never healthy.
	Health   string    `json:"health"`
	HealthAt time.Time `json:"health_at,omitzero"`
}

func (n *Node) provider() bool { return slices.Contains(n.Roles, schema.RoleProvider) }

// healthy: active, and working on the new interface since activation:
// passing, or warning (it answers and holds this node's registrations, but
// disagrees with the old interface on a consumed service — the node falls
// back for that service, and the registry-wide parity gate judges the
// disagreement). Critical and unknown are never healthy.
func (n *Node) healthy() bool {
	working := n.Health == schema.HealthPassing || n.Health == schema.HealthWarning
	return n.Reached == ReachedActive && working && !n.HealthAt.Before(n.ActiveAt)
}

// RegistryReport is what the runtime measured of the registry side: the new
// registry answers and is healthy, the bridge runs, and the parity of the
// new registry's instance sets against the old one's.
type RegistryReport struct {
	At            time.Time `json:"at"`
	Reachable     bool      `json:"reachable"`
	Healthy       bool      `json:"healthy"`
	BridgeRunning bool      `json:"bridge_running"`
	Parity        float64   `json:"parity"`
	Detail        string    `json:"detail,omitempty"`
}

// Decision records one decision with the inputs it was made on.
type Decision struct {
	At        time.Time `json:"at"`
	Decision  string    `json:"decision"`
	Check     string    `json:"check,omitempty"`
	Observed  *float64  `json:"observed,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
	Nodes     []string  `json:"nodes,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Rollout is the whole state of one rollout; Step folds inputs into it.
type Rollout struct {
	ID    string      `json:"id"`
	Plan  schema.Plan `json:"plan"`
	Epoch uint64      `json:"epoch"`
	Phase Phase       `json:"phase"`
	// Paused by an operator: no new commands (pending ones are re-sent).
	Paused bool `json:"paused"`
	// Held at a gate that failed with on_failure=pause: resume re-soaks and
	// re-evaluates, approve passes the gate.
	Held  bool    `json:"held"`
	Waves []Wave  `json:"waves"`
	Wave  int     `json:"wave"`
	Nodes []*Node `json:"nodes"` // in plan order
	// SoakStarted is when the current wave's nodes all answered; zero before.
	SoakStarted time.Time `json:"soak_started,omitzero"`
	// Stage is the role being switched back or finalized: consumer, then provider.
	Stage            string         `json:"stage,omitempty"`
	FinalizeApproved bool           `json:"finalize_approved"`
	Registry         RegistryReport `json:"registry"`
	Created          time.Time      `json:"created"`
	Now              time.Time      `json:"now"`
	Decisions        []Decision     `json:"decisions"`

	index     map[string]*Node // Node's lookup, built on first use
	waveNodes [][]*Node        // wave's, likewise
}

// Node returns the named node, or nil.
func (r *Rollout) Node(id string) *Node {
	if len(r.index) != len(r.Nodes) {
		r.index = make(map[string]*Node, len(r.Nodes))
		for _, n := range r.Nodes {
			r.index[n.ID] = n
		}
	}
	return r.index[id]
}

// Clone returns a deep copy.
func (r Rollout) Clone() Rollout {
	c := r
	c.Waves = slices.Clone(r.Waves)
	c.Nodes = make([]*Node, len(r.Nodes))
	for i, n := range r.Nodes {
		cp := *n
		if n.Pending != nil {
			p := *n.Pending
			cp.Pending = &p
		}
		c.Nodes[i] = &cp
	}
	c.Decisions = slices.Clone(r.Decisions)
	c.index, c.waveNodes = nil, nil
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
// start the bridge and waits in PhasePreparing for a registry report.
func NewRollout(id string, p schema.Plan, epoch uint64, now time.Time) (Rollout, Output, error) {
	if err := ValidatePlan(p); err != nil {
		return Rollout{}, Output{}, err
	}
	r := Rollout{ID: id, Plan: p, Epoch: epoch, Phase: PhasePreparing, Waves: PlanWaves(p), Created: now, Now: now}
	wave := map[string]int{}
	for i, w := range r.Waves {
		for _, n := range w.Nodes {
			wave[n] = i
		}
	}
	for _, n := range p.Nodes {
		r.Nodes = append(r.Nodes, &Node{ID: n.NodeID, Roles: slices.Clone(n.Roles), Wave: wave[n.NodeID], Health: schema.HealthUnknown})
	}
	var out Output
	out.Bridge = BridgeStart
	r.decide(&out, Decision{Decision: "created", Detail: fmt.Sprintf("%d nodes in %d waves", len(r.Nodes), len(r.Waves))})
	return r, out, nil
}

// CommandID is the id of the command of one intent: rollout:node:kind,
// shortened with a hash of the whole when it passes the 128 characters ids
// may have.
func CommandID(rollout, node, kind string) string {
	id := rollout + ":" + node + ":" + kind
	if len(id) <= 128 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:100] + "." + hex.EncodeToString(sum[:])[:27]
}

func (r *Rollout) command(n *Node, kind string) Command {
	c := Command{ID: CommandID(r.ID, n.ID, kind), Node: n.ID, Kind: kind}
	switch kind {
	case KindInstall, KindActivate:
		c.Interface = r.Plan.To.Name
	case KindSwitchBack:
		c.Interface, c.To = r.Plan.To.Name, r.Plan.From.Name
	case KindUninstall:
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
