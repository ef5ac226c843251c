package schema

import "time"

// Package is an interface package: where to fetch it and the digest it must have.
type Package struct {
	URL    string `json:"url"`
	Digest string `json:"digest"` // sha256:<64 hex>
}

// Interface is a registry interface: which registry, where, and its package.
type Interface struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"` // zookeeper | consul
	Address string  `json:"address"`
	Package Package `json:"package"`
}

// The roles a node plays.
const (
	RoleProvider = "provider"
	RoleConsumer = "consumer"
)

// CommandHeader is what every command names. The agent checks all of it
// against the bytes it verified before it acts.
type CommandHeader struct {
	NodeID        string    `json:"node_id"`
	CommandID     string    `json:"command_id"`
	RolloutID     string    `json:"rollout_id"`
	Epoch         uint64    `json:"epoch"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	PackageDigest string    `json:"package_digest"`
}

// Header returns the header; it makes every command a Command.
func (h CommandHeader) Header() CommandHeader { return h }

// PartitionKey is the node id: a node's commands share one partition.
func (h CommandHeader) PartitionKey() string { return h.NodeID }

// Command is any of the command types.
type Command interface {
	Message
	Header() CommandHeader
}

// RequestHeader is what every operator request names. A signed request's
// RequestedBy is the id of the key that signed it (the coordinator refuses
// any other); an unsigned one's is what the sender says.
type RequestHeader struct {
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
	RolloutID   string    `json:"rollout_id"`
	RequestedBy string    `json:"requested_by"`
	Reason      string    `json:"reason,omitempty"`
}

// Requested returns the header; it makes every request a Request.
func (h RequestHeader) Requested() RequestHeader { return h }

// PartitionKey is the rollout id: a rollout's requests stay in order.
func (h RequestHeader) PartitionKey() string { return h.RolloutID }

// Request is any of the request types.
type Request interface {
	Message
	Requested() RequestHeader
	// RequestKind is what the request asks.
	RequestKind() RequestKind
}

// Plan is what a rollout moves, where, in which order and under which gates.
// Its semantics belong to the coordinator; this is its wire shape.
type Plan struct {
	From     Interface  `json:"from"`
	To       Interface  `json:"to"`
	Nodes    []PlanNode `json:"nodes,omitempty"` // required in a request; a rollout head's plan has none
	Waves    Waves      `json:"waves"`
	Gates    Gates      `json:"gates"`
	Finalize string     `json:"finalize"` // manual | automatic
	// Unowned says what finalize does about instances of the old registry
	// that no node of the plan registered (UnownedRefuse when empty).
	Unowned string `json:"unowned,omitempty"`
}

// What a plan's finalize does about unowned instances.
const (
	// UnownedRefuse refuses finalize while the old registry holds instances
	// no node of the plan registered, naming them.
	UnownedRefuse = "refuse"
	// UnownedKeepBridge finalizes and keeps the bridge mirroring the old
	// registry into the new one until a second finalize ends it.
	UnownedKeepBridge = "keep-bridge"
)

// UnownedPolicy is the plan's Unowned, UnownedRefuse when it states none.
func (p Plan) UnownedPolicy() string {
	if p.Unowned == "" {
		return UnownedRefuse
	}
	return p.Unowned
}

// PlanNode is one node of a plan and the roles it plays.
type PlanNode struct {
	NodeID string   `json:"node_id"`
	Roles  []string `json:"roles"`
}

// Waves orders the nodes of each role: a canary wave, then cumulative percentages.
type Waves struct {
	Canary      int   `json:"canary"`
	Percentages []int `json:"percentages"`
	MaxInFlight int   `json:"max_in_flight"`
}

// Bounds of a plan's counts and durations: the same in the JSON Schema
// (defs.v1.json $defs plan, waves, gates) and in coordinator.ValidatePlan,
// which a test holds equal. Seven days keeps every seconds value far from
// time.Duration's overflow (about 292 years) and covers any real soak.
const (
	PlanMaxNodes             = 100_000 // nodes; also the most canary, max_in_flight and failure_budget can mean
	PlanMaxWaves             = 100     // percentages: rising in 1..100
	PlanMinAckTimeoutSeconds = 10      // above every agent's package fetch (nodeagent: fetch.timeout < this)
	PlanMaxSeconds           = 7 * 24 * 60 * 60
	// PlanMaxGraceSeconds bounds gates.activation_grace_seconds: a grace
	// longer than an hour would hide a broken node for as long.
	PlanMaxGraceSeconds = 60 * 60
	// DefaultActivationGraceSeconds is the activation grace of a plan that
	// does not state one.
	DefaultActivationGraceSeconds = 10
)

// Gates decide whether a wave may be followed by the next.
type Gates struct {
	AckTimeoutSeconds int     `json:"ack_timeout_seconds"`
	SoakSeconds       int     `json:"soak_seconds"`
	MinHealthyRatio   float64 `json:"min_healthy_ratio"`
	MinParity         float64 `json:"min_parity"`
	FailureBudget     int     `json:"failure_budget"`
	OnFailure         string  `json:"on_failure"` // switch-back | pause
	// ActivationGraceSeconds is how long after its activation a node's
	// critical reports on the new interface do not fail it (its
	// registrations may not be visible yet). Absent:
	// DefaultActivationGraceSeconds; 0 judges a node on its first report.
	ActivationGraceSeconds *int `json:"activation_grace_seconds,omitempty"`
}

// ActivationGrace is the plan's activation grace, its default when absent.
func (g Gates) ActivationGrace() time.Duration {
	s := DefaultActivationGraceSeconds
	if g.ActivationGraceSeconds != nil {
		s = *g.ActivationGraceSeconds
	}
	return time.Duration(s) * time.Second
}
