package schema

import "time"

// EpochKey is the state-topic key of the EpochRecord.
const EpochKey = "epoch"

// Bounds of the state records: no record grows with the fleet.
const (
	// MaxDecisions is how many decisions a rollout's head keeps; older ones
	// are counted in EarlierDecisions.
	MaxDecisions = 50
	// MaxDecisionNodes is how many node ids a decision lists; NodeCount
	// says how many there were.
	MaxDecisionNodes = 16
	// MaxSeenRequests is how many SeenRequests a coordinator keeps at once:
	// the requests it handled within one validity window (15 minutes by
	// default). It refuses more until some expire.
	MaxSeenRequests = 10_000
)

// RolloutRecord is the head of one rollout on the compacted state topic,
// keyed by rollout id: everything but its nodes, which are NodeRecords of
// their own (one per node, keyed rollout id / node id), so no record grows
// with the fleet. The latest record of a key wins; a new leader folds the
// head and its nodes into the rollout and resumes where the last one
// stopped.
type RolloutRecord struct {
	ID string `json:"id"`
	// Plan is the plan without its nodes (they are the NodeRecords);
	// NodeCount says how many there are.
	Plan        Plan         `json:"plan"`
	NodeCount   int          `json:"node_count"`
	Epoch       uint64       `json:"epoch"`
	Phase       RolloutPhase `json:"phase"`
	Paused      bool         `json:"paused"`
	Held        bool         `json:"held"`
	Waves       []WaveRecord `json:"waves"`
	Wave        int          `json:"wave"`
	SoakStarted time.Time    `json:"soak_started,omitzero"`
	// EpochSince is when the leader of Epoch took the rollout over: the
	// registry side is given time to show itself again from then.
	EpochSince       time.Time `json:"epoch_since,omitzero"`
	Stage            string    `json:"stage,omitempty"`
	FinalizeApproved bool      `json:"finalize_approved"`
	// BridgeKept: finalized with unowned instances under keep-bridge, the
	// bridge still mirrors them; a second finalize ends it.
	BridgeKept bool           `json:"bridge_kept,omitempty"`
	Registry   RegistryReport `json:"registry"`
	Created    time.Time      `json:"created"`
	Now        time.Time      `json:"now"`
	// Decisions are the latest MaxDecisions; EarlierDecisions counts those
	// dropped before them.
	Decisions        []Decision `json:"decisions"`
	EarlierDecisions int        `json:"earlier_decisions,omitempty"`
}

// WaveRecord is one wave: nodes of one role moved together. Its nodes are
// the NodeRecords whose Wave is its index.
type WaveRecord struct {
	Role string `json:"role"`
	Size int    `json:"size"`
}

// NodeRecord is the coordinator's durable view of one node of a rollout,
// keyed rollout id / node id. Health is not in it: a report is evidence
// only to the leader that received it, and a new leader waits for fresh
// ones.
type NodeRecord struct {
	RolloutID string          `json:"rollout_id"`
	Index     int             `json:"index"` // position in the plan
	ID        string          `json:"id"`
	Roles     []string        `json:"roles"`
	Wave      int             `json:"wave"`
	Reached   Progress        `json:"reached"`
	ActiveAt  time.Time       `json:"active_at,omitzero"`
	Touched   bool            `json:"touched"`
	Pending   *PendingCommand `json:"pending,omitempty"`
	Failure   string          `json:"failure,omitempty"`
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
	// BridgeConverged says the bridge had finished a full sync and had
	// synced every service compared: only then is Parity evidence.
	BridgeConverged bool `json:"bridge_converged,omitempty"`
	// Epoch is the leader epoch under which the report was taken; a report
	// of an earlier leader is not evidence.
	Epoch uint64 `json:"epoch,omitempty"`
	// Unowned counts the old registry's instances that no node of the plan
	// registered; UnownedDetail names them per service, within MaxDetail.
	Unowned       int     `json:"unowned,omitempty"`
	UnownedDetail string  `json:"unowned_detail,omitempty"`
	Parity        float64 `json:"parity"`
	Detail        string  `json:"detail,omitempty"`
}

// Decision records one decision of the coordinator with its inputs. Nodes
// lists at most MaxDecisionNodes ids, NodeCount how many there were when it
// is more; Detail is within MaxDetail; Repeated counts identical decisions
// folded into this one (a request refused again for the same reason).
type Decision struct {
	At        time.Time    `json:"at"`
	Decision  DecisionKind `json:"decision"`
	Check     Check        `json:"check,omitempty"`
	Observed  *float64     `json:"observed,omitempty"`
	Threshold *float64     `json:"threshold,omitempty"`
	Nodes     []string     `json:"nodes,omitempty"`
	NodeCount int          `json:"node_count,omitempty"`
	Detail    string       `json:"detail,omitempty"`
	Repeated  int          `json:"repeated,omitempty"`
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
func (*NodeRecord) MessageType() string { return TypeNodeRecord }

// PartitionKey is rollout id / node id: one record a node on the
// compacted topic.
func (n *NodeRecord) PartitionKey() string { return NodeKey(n.RolloutID, n.ID) }

// NodeKey is the state-topic key of a node of a rollout.
func NodeKey(rollout, node string) string { return rollout + "/" + node }

// MessageType implements Message.
func (*EpochRecord) MessageType() string { return TypeEpochRecord }

// PartitionKey is EpochKey.
func (*EpochRecord) PartitionKey() string { return EpochKey }

// SeenRequest is a request the coordinator handled, on the state topic
// under SeenRequestKey: until ExpiresAt every leader, this one or the next,
// drops another request with its id. Past ExpiresAt the request would be
// refused as too old anyway, and the leader deletes the record (a
// tombstone); so at most MaxSeenRequests of about 250 bytes are live.
type SeenRequest struct {
	RequestID   string      `json:"request_id"`
	RolloutID   string      `json:"rollout_id"`
	Kind        RequestKind `json:"kind"`
	RequestedBy string      `json:"requested_by"`
	RequestedAt time.Time   `json:"requested_at"`
	ExpiresAt   time.Time   `json:"expires_at"`
}

// MessageType implements Message.
func (*SeenRequest) MessageType() string { return TypeSeenRequest }

// PartitionKey is SeenRequestKey of the request id.
func (s *SeenRequest) PartitionKey() string { return SeenRequestKey(s.RequestID) }

// SeenRequestKey is the state-topic key of a seen request: "/request/" and
// its id. No rollout key (an id, which starts with a letter or digit) and
// no node key (one slash) looks like it.
func SeenRequestKey(id string) string { return "/request/" + id }
