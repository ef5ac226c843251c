package schema

import "time"

// EpochKey is the state-topic key of the EpochRecord.
const EpochKey = "epoch"

// RolloutRecord is the coordinator's durable record of one rollout, kept on
// the compacted state topic under the rollout id; the latest revision wins.
type RolloutRecord struct {
	RolloutID string       `json:"rollout_id"`
	Revision  uint64       `json:"revision"`
	Epoch     uint64       `json:"epoch"`
	Phase     string       `json:"phase"`
	Paused    bool         `json:"paused"`
	Wave      int          `json:"wave"`
	Plan      Plan         `json:"plan"`
	Nodes     []NodeRecord `json:"nodes"`
	Decisions []Decision   `json:"decisions"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// NodeRecord is the desired and last reported state of one node of a rollout.
type NodeRecord struct {
	NodeID        string `json:"node_id"`
	Desired       string `json:"desired"`
	DesiredState  string `json:"desired_state"`
	LastCommandID string `json:"last_command_id,omitempty"`
	LastAck       string `json:"last_ack,omitempty"`
	Health        string `json:"health"`
}

// Decision records one decision of the coordinator with its inputs.
type Decision struct {
	At        time.Time `json:"at"`
	Decision  string    `json:"decision"`
	Check     string    `json:"check"`
	Observed  *float64  `json:"observed,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
	Nodes     []string  `json:"nodes,omitempty"`
}

// EpochRecord is the leader epoch, kept on the state topic under EpochKey.
type EpochRecord struct {
	Epoch      uint64    `json:"epoch"`
	Leader     string    `json:"leader"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// MessageType implements Message.
func (*RolloutRecord) MessageType() string { return TypeRolloutRecord }

// PartitionKey is the rollout id.
func (r *RolloutRecord) PartitionKey() string { return r.RolloutID }

// MessageType implements Message.
func (*EpochRecord) MessageType() string { return TypeEpochRecord }

// PartitionKey is EpochKey.
func (*EpochRecord) PartitionKey() string { return EpochKey }
