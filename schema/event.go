package schema

import "time"

// Ack is an agent's answer to one command.
type Ack struct {
	NodeID    string     `json:"node_id"`
	CommandID string     `json:"command_id"`
	RolloutID string     `json:"rollout_id"`
	Epoch     uint64     `json:"epoch"`
	Outcome   AckOutcome `json:"outcome"`
	Reason    string     `json:"reason,omitempty"`
	At        time.Time  `json:"at"`
}

// Health is what an agent observes of each interface it holds, and of its
// apps' checks.
type Health struct {
	NodeID     string            `json:"node_id"`
	ObservedAt time.Time         `json:"observed_at"`
	Interfaces []InterfaceHealth `json:"interfaces"`
	// Checks are the host's app checks, failing ones first, at most
	// MaxHealthChecks.
	Checks []AppCheck `json:"checks,omitempty"`
}

// Bounds of a health report's lists (event.health.v1.json).
const (
	MaxHealthChecks = 32 // checks' maxItems
	MaxHealthProbes = 32 // an interface's probes' maxItems
	MaxProbed       = 64 // a probe entry's probed and reachable maximum
)

// AppCheck is one app check's result on a node: an HTTP or TCP check of a
// service the host registers.
type AppCheck struct {
	Service  string       `json:"service"`
	Instance string       `json:"instance"`
	Kind     string       `json:"kind"`   // http | tcp
	Status   HealthStatus `json:"status"` // passing | critical
	Since    time.Time    `json:"since"`  // when it took this status
	Detail   string       `json:"detail,omitempty"`
}

// Probe is what a consumer found of one consumed service's endpoints as
// one interface resolves them: how many it probed, how many accepted.
type Probe struct {
	Service   string `json:"service"`
	Probed    int    `json:"probed"`
	Reachable int    `json:"reachable"`
	Detail    string `json:"detail,omitempty"`
}

// InterfaceHealth is one interface's health on a node.
type InterfaceHealth struct {
	Name     string         `json:"name"`
	State    InterfacePhase `json:"state"`
	Status   HealthStatus   `json:"status"`
	Resolved int            `json:"resolved"`
	Failed   int            `json:"failed"`
	Detail   string         `json:"detail,omitempty"`
	// Probes, on a consumer, are the consumed services' endpoints resolved
	// through this interface and probed in the last round; failing ones
	// first, at most MaxHealthProbes.
	Probes []Probe `json:"probes,omitempty"`
}

// Hello is an agent's inventory and the actual state of its interfaces.
type Hello struct {
	NodeID        string           `json:"node_id"`
	AgentVersion  string           `json:"agent_version"`
	StartedAt     time.Time        `json:"started_at"`
	Roles         []string         `json:"roles"`
	Services      []Service        `json:"services"`
	Interfaces    []InterfaceState `json:"interfaces"`
	HighestEpoch  uint64           `json:"highest_epoch"`
	LastCommandID string           `json:"last_command_id,omitempty"`
}

// Service is a service a node provides or consumes.
type Service struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// InterfaceState is the actual state of one interface on a node.
type InterfaceState struct {
	Name          string         `json:"name"`
	Kind          string         `json:"kind"`
	Address       string         `json:"address,omitempty"`
	PackageDigest string         `json:"package_digest,omitempty"`
	State         InterfacePhase `json:"state"`
}

// MessageType implements Message.
func (*Ack) MessageType() string { return TypeAck }

// PartitionKey is the node id.
func (a *Ack) PartitionKey() string { return a.NodeID }

// MessageType implements Message.
func (*Health) MessageType() string { return TypeHealth }

// PartitionKey is the node id.
func (h *Health) PartitionKey() string { return h.NodeID }

// MessageType implements Message.
func (*Hello) MessageType() string { return TypeHello }

// PartitionKey is the node id.
func (h *Hello) PartitionKey() string { return h.NodeID }
