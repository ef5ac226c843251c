package schema

// The named values of the contract, each declared once here: the
// coordinator's core, its runtime, the agent and the CLI all use these
// types, and the JSON Schemas list the same values in their enums
// (TestEnumsMatchConstants keeps the two in step).

// CommandKind names what the coordinator asks of a node.
type CommandKind string

// Command kinds.
const (
	CommandInstall    CommandKind = "install"
	CommandActivate   CommandKind = "activate"
	CommandSwitchBack CommandKind = "switch-back"
	CommandUninstall  CommandKind = "uninstall"
	CommandResync     CommandKind = "resync"
)

// AckOutcome is how an agent answered a command.
type AckOutcome string

// The outcomes of a command an agent reports.
const (
	AckDone     AckOutcome = "done"     // the command took effect (or already had)
	AckFailed   AckOutcome = "failed"   // the agent tried and could not; a re-send retries
	AckRejected AckOutcome = "rejected" // the agent refused without trying (verification failed, or not in this state)
)

// HealthStatus is an interface's health on a node; unknown means no
// answer and is never healthy.
type HealthStatus string

// The health statuses.
const (
	HealthPassing  HealthStatus = "passing"  // connected; this host's registrations read back
	HealthWarning  HealthStatus = "warning"  // connected, but the two interfaces disagree on a consumed service
	HealthCritical HealthStatus = "critical" // not connected, or a registration is missing
	HealthUnknown  HealthStatus = "unknown"  // not observed (not open), or no report
)

// InterfacePhase is where one registry interface is on a node:
//
//	absent -> installed -> active <-> standby -> removed
type InterfacePhase string

// The phases of an interface on a node.
const (
	StateAbsent    InterfacePhase = "absent"
	StateInstalled InterfacePhase = "installed"
	StateActive    InterfacePhase = "active"
	StateStandby   InterfacePhase = "standby"
	StateRemoved   InterfacePhase = "removed"
)

// RolloutPhase is where a rollout is.
type RolloutPhase string

// Rollout phases, in their usual order. Failed, SwitchedBack and Finalized
// end a rollout.
const (
	PhasePreparing     RolloutPhase = "preparing"      // new registry checked, bridge started, parity measured
	PhaseRolling       RolloutPhase = "rolling"        // waves: install + activate, gates after each
	PhaseCommitted     RolloutPhase = "committed"      // new interface primary everywhere; switch-back still instant
	PhaseFinalizing    RolloutPhase = "finalizing"     // uninstalling the old interface, consumers first
	PhaseFinalized     RolloutPhase = "finalized"      // old interface gone, bridge stopped
	PhaseSwitchingBack RolloutPhase = "switching-back" // returning every touched node, consumers first
	PhaseSwitchedBack  RolloutPhase = "switched-back"  // every touched node on the old interface, bridge stopped
	PhaseFailed        RolloutPhase = "failed"         // could not prepare; no node was touched
)

// Ended reports whether the rollout is over.
func (p RolloutPhase) Ended() bool {
	return p == PhaseFinalized || p == PhaseSwitchedBack || p == PhaseFailed
}

// Progress is how far a node of a rollout got, as acked by its agent.
type Progress string

// Progress of a node.
const (
	ReachedNone         Progress = ""
	ReachedInstalled    Progress = "installed"
	ReachedActive       Progress = "active"
	ReachedSwitchedBack Progress = "switched-back"
	ReachedUninstalled  Progress = "uninstalled"
)

// DecisionKind names a decision the coordinator records.
type DecisionKind string

// Decisions.
const (
	DecisionCreated          DecisionKind = "created"
	DecisionPrepared         DecisionKind = "prepared"
	DecisionPrepareFailed    DecisionKind = "prepare-failed"
	DecisionNodeFailed       DecisionKind = "node-failed"
	DecisionNodeUnknown      DecisionKind = "node-unknown"
	DecisionWavePassed       DecisionKind = "wave-passed"
	DecisionHeld             DecisionKind = "held"
	DecisionGateApproved     DecisionKind = "gate-approved"
	DecisionPaused           DecisionKind = "paused"
	DecisionResumed          DecisionKind = "resumed"
	DecisionAborted          DecisionKind = "aborted"
	DecisionRequestRefused   DecisionKind = "request-refused"
	DecisionCommitted        DecisionKind = "committed"
	DecisionFinalizeApproved DecisionKind = "finalize-approved"
	DecisionFinalizing       DecisionKind = "finalizing"
	DecisionFinalized        DecisionKind = "finalized"
	DecisionSwitchBack       DecisionKind = "switch-back"
	DecisionSwitchedBack     DecisionKind = "switched-back"
	DecisionFinalizeRefused  DecisionKind = "finalize-refused"
	DecisionBridgeKept       DecisionKind = "bridge-kept"
	DecisionBridgeEnded      DecisionKind = "bridge-ended"
)

// Check names what a decision checked. A refused request's check is the
// request's kind (a RequestKind as a Check).
type Check string

// Checks.
const (
	CheckAck              Check = "ack"                // an agent answered failed or rejected
	CheckAckTimeout       Check = "ack-timeout"        // no answer within the plan's ack timeout
	CheckFailureBudget    Check = "failure-budget"     // failed nodes of the wave against the budget
	CheckHealthyRatio     Check = "healthy-ratio"      // healthy share of the nodes moved so far
	CheckParity           Check = "parity"             // the new registry's instance sets against the old one's
	CheckCommitAllHealthy Check = "commit-all-healthy" // every node healthy before commit
	CheckRegistry         Check = "registry"           // no registry report at all
	CheckRegistryHealth   Check = "registry-health"    // the new registry unreachable or unhealthy
	CheckBridge           Check = "bridge"             // the bridge is not running
	CheckStep             Check = "step"               // a step of the rollout failed (a panic the runtime recovered)
	CheckUnowned          Check = "unowned"            // old-registry instances no node of the plan registered
)

// RequestKind names what an operator or another system asks.
type RequestKind string

// Request kinds.
const (
	RequestCreate   RequestKind = "create"
	RequestPause    RequestKind = "pause"
	RequestResume   RequestKind = "resume"
	RequestApprove  RequestKind = "approve"
	RequestAbort    RequestKind = "abort"
	RequestFinalize RequestKind = "finalize"
)
