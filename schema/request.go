package schema

// CreateRollout asks the coordinator to plan a rollout.
type CreateRollout struct {
	RequestHeader
	Plan Plan `json:"plan"`
}

// Pause stops sending new commands for a rollout.
type Pause struct{ RequestHeader }

// Resume continues a paused rollout.
type Resume struct{ RequestHeader }

// Approve lets a rollout waiting at a gate go on.
type Approve struct {
	RequestHeader
	Wave *int `json:"wave,omitempty"`
}

// Abort stops a rollout and switches every touched node back.
type Abort struct{ RequestHeader }

// Finalize uninstalls the old interface everywhere; it cannot be undone.
type Finalize struct{ RequestHeader }

// MessageType implements Message.
func (*CreateRollout) MessageType() string { return TypeCreateRollout }

// MessageType implements Message.
func (*Pause) MessageType() string { return TypePause }

// MessageType implements Message.
func (*Resume) MessageType() string { return TypeResume }

// MessageType implements Message.
func (*Approve) MessageType() string { return TypeApprove }

// MessageType implements Message.
func (*Abort) MessageType() string { return TypeAbort }

// MessageType implements Message.
func (*Finalize) MessageType() string { return TypeFinalize }

// RequestKind implements Request.
func (*CreateRollout) RequestKind() RequestKind { return RequestCreate }

// RequestKind implements Request.
func (*Pause) RequestKind() RequestKind { return RequestPause }

// RequestKind implements Request.
func (*Resume) RequestKind() RequestKind { return RequestResume }

// RequestKind implements Request.
func (*Approve) RequestKind() RequestKind { return RequestApprove }

// RequestKind implements Request.
func (*Abort) RequestKind() RequestKind { return RequestAbort }

// RequestKind implements Request.
func (*Finalize) RequestKind() RequestKind { return RequestFinalize }
