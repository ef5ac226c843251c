package schema

import "time"

// EpochKey is the state-topic key of the EpochRecord.
const EpochKey = "epoch"

// RolloutRecord is the coordinator's durable record of one rollout, kept on
// the compacted state topic under the rollout id; the latest record wins. It
// is the whole state the coordinator folds its inputs into (package
// coordinator's Rollout has the same JSON shape), so a new leader resumes
// where the last one stopped.
type RolloutRecord struct {
	ID               string         `json:"id"`
	Plan             Plan           `json:"plan"`
	Epoch            uint64         `json:"epoch"`
	Phase            RolloutPhase   `json:"phase"`
	Paused           bool           `json:"paused"`
	Held             bool           `json:"held"`
	Waves            []WaveRecord   `json:"waves"`
	Wave             int            `json:"wave"`
	Nodes            []NodeRecord   `json:"nodes"`
	SoakStarted      time.Time      `json:"soak_started,omitzero"`
	Stage            string         `json:"stage,omitempty"`
	FinalizeApproved bool           `json:"finalize_approved"`
	Registry         RegistryReport `json:"registry"`
	Created          time.Time      `json:"created"`
	Now              time.Time      `json:"now"`
	Decisions        []Decision     `json:"decisions"`
}

// WaveRecord is one wave: nodes of one role moved together.
type WaveRecord struct {
	Role  string   `json:"role"`
	Nodes []string `json:"nodes"`
}

// NodeRecord is the coordinator's view of one node of a rollout.
type NodeRecord struct {
	ID       string          `json:"id"`
	Roles    []string        `json:"roles"`
	Wave     int             `json:"wave"`
	Reached  Progress        `json:"reached"`
	ActiveAt time.Time       `json:"active_at,omitzero"`
	Touched  bool            `json:"touched"`
	Pending  *PendingCommand `json:"pending,omitempty"`
	Failure  string          `json:"failure,omitempty"`
	Health   HealthStatus    `json:"health"`
	HealthAt time.Time       `json:"health_at,omitzero"`
}

// PendingCommand is a command sent and not yet answered; a new leader sends
// it again with the same id.
type PendingCommand struct {
	Command   CommandRef `json:"command"`
	FirstSent time.Time  `json:"first_sent"`
	LastSent  time.Time  `json:"last_sent"`
	Sends     int        `json:"sends"`
}

// CommandRef names a command by its intent.
type CommandRef struct {
	ID        string      `json:"id"`
	Node      string      `json:"node"`
	Kind      CommandKind `json:"kind"`
	Interface string      `json:"interface"`
	To        string      `json:"to,omitempty"`
}

// RegistryReport is the last measurement of the registry side.
type RegistryReport struct {
	At            time.Time `json:"at"`
	Reachable     bool      `json:"reachable"`
	Healthy       bool      `json:"healthy"`
	BridgeRunning bool      `json:"bridge_running"`
	Parity        float64   `json:"parity"`
	Detail        string    `json:"detail,omitempty"`
}

// Decision records one decision of the coordinator with its inputs.
type Decision struct {
	At        time.Time    `json:"at"`
	Decision  DecisionKind `json:"decision"`
	Check     Check        `json:"check,omitempty"`
	Observed  *float64     `json:"observed,omitempty"`
	Threshold *float64     `json:"threshold,omitempty"`
	Nodes     []string     `json:"nodes,omitempty"`
	Detail    string       `json:"detail,omitempty"`
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
func (r *RolloutRecord) PartitionKey() string { return r.ID }

// MessageType implements Message.
func (*EpochRecord) MessageType() string { return TypeEpochRecord }

// PartitionKey is EpochKey.
func (*EpochRecord) PartitionKey() string { return EpochKey }
