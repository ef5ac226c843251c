package events

import (
	"errors"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/schema"
)

// ReplayState is what an agent remembers of the commands it applied; the
// CommandVerifier reads it, the agent updates it after applying.
type ReplayState interface {
	// HighestEpoch is the highest coordinator epoch seen (0: none).
	HighestEpoch() uint64
	// Applied reports whether a command id was already applied.
	Applied(commandID string) bool
}

// CommandVerifierConfig configures a CommandVerifier.
type CommandVerifierConfig struct {
	// NodeID is this agent's node id; records keyed to other nodes are skipped.
	NodeID string
	// MaxSkew is the clock difference tolerated at both ends of a command's
	// validity window. Default 30s.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultCommandVerifierConfig returns the defaults for node.
func DefaultCommandVerifierConfig(node string) CommandVerifierConfig {
	return CommandVerifierConfig{NodeID: node, MaxSkew: 30 * time.Second}
}

func (c CommandVerifierConfig) validate() error {
	if c.NodeID == "" {
		return errors.New("events: CommandVerifierConfig.NodeID is empty")
	}
	return checkPositive("CommandVerifierConfig.MaxSkew", c.MaxSkew)
}

// CommandVerifier is an agent's decoder for the commands topic.
type CommandVerifier struct {
	cfg    CommandVerifierConfig
	keys   *Keyring
	replay ReplayState
}

// NewCommandVerifier returns a verifier trusting the coordinator keys in keys.
func NewCommandVerifier(cfg CommandVerifierConfig, keys *Keyring, replay ReplayState) (*CommandVerifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if keys == nil || replay == nil {
		return nil, errors.New("events: NewCommandVerifier needs a keyring and a replay state")
	}
	cfg.Now = nowOr(cfg.Now)
	return &CommandVerifier{cfg: cfg, keys: keys, replay: replay}, nil
}

// Decode implements Decoder: records keyed to other nodes give ErrSkip,
// the others are verified at the configured clock's time.
func (v *CommandVerifier) Decode(rec kafka.Message) (Delivery, error) {
	if string(rec.Key) != v.cfg.NodeID {
		return Delivery{}, ErrSkip
	}
	return decodeWith(rec, schema.ClassCommand, func(env Envelope) (schema.Message, error) { return v.Verify(env, v.cfg.Now()) })
}

// Verify checks a command envelope at time now, in this order: a known key
// that is not revoked, the signature, the schema, addressed to this node,
// the unsigned headers agreeing with the signed body, inside the validity window (with
// MaxSkew), an epoch not below the highest seen, a command id not yet
// applied. The error is a *RejectError whose Reason names the failed check;
// when the signature and the schema passed and a later check failed, the
// *RejectError is wrapped in a *RefusedCommand that carries the signed
// header.
func (v *CommandVerifier) Verify(env Envelope, now time.Time) (schema.Command, error) {
	if err := verifySignature(v.keys, env); err != nil {
		return nil, err
	}
	m, err := body(env)
	if err != nil {
		return nil, err
	}
	cmd := m.(schema.Command) // class command: every type is a Command
	h := cmd.Header()
	if err := v.refusal(env, m, h, now); err != nil {
		return nil, &RefusedCommand{Header: h, Err: err}
	}
	return cmd, nil
}

// refusal runs the checks after the signature on a signed, valid command.
func (v *CommandVerifier) refusal(env Envelope, m schema.Message, h schema.CommandHeader, now time.Time) error {
	if h.NodeID != v.cfg.NodeID {
		return reject(ReasonWrongNode, "command %s is for node %q, this is %q", h.CommandID, h.NodeID, v.cfg.NodeID)
	}
	if err := agree(env, m); err != nil {
		return err
	}
	switch {
	case now.Add(v.cfg.MaxSkew).Before(h.IssuedAt):
		return reject(ReasonNotYetValid, "command %s issued at %s, now %s", h.CommandID, h.IssuedAt.Format(time.RFC3339), now.Format(time.RFC3339))
	case !h.ExpiresAt.After(h.IssuedAt) || now.Add(-v.cfg.MaxSkew).After(h.ExpiresAt):
		return reject(ReasonExpired, "command %s expires at %s, now %s", h.CommandID, h.ExpiresAt.Format(time.RFC3339), now.Format(time.RFC3339))
	case h.Epoch < v.replay.HighestEpoch():
		return reject(ReasonStaleEpoch, "command %s from epoch %d, highest seen %d", h.CommandID, h.Epoch, v.replay.HighestEpoch())
	case v.replay.Applied(h.CommandID):
		return reject(ReasonDuplicate, "command %s already applied", h.CommandID)
	}
	return nil
}

// RefusedCommand is a command whose signature verified, from a trusted
// coordinator key, and whose body is valid, but which a later check
// refused: for another node, outside its validity window, of a stale
// epoch, already applied. Its Header is the signed one, so an agent may
// answer it. A rejection that is not a RefusedCommand failed at or before
// the signature: nothing in the record is the coordinator's, not even its
// command id, and an agent must not answer it.
type RefusedCommand struct {
	Header schema.CommandHeader
	Err    error // a *RejectError
}

func (e *RefusedCommand) Error() string { return e.Err.Error() }
func (e *RefusedCommand) Unwrap() error { return e.Err }

// Replay is an in-memory ReplayState, safe for concurrent use. An agent
// that must remember across restarts persists what Record is given.
type Replay struct {
	mu      sync.Mutex
	epoch   uint64
	applied map[string]bool
}

// NewReplay returns an empty replay state.
func NewReplay() *Replay { return &Replay{applied: map[string]bool{}} }

// Record remembers that a command was applied and raises the epoch.
func (r *Replay) Record(h schema.CommandHeader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied[h.CommandID] = true
	r.epoch = max(r.epoch, h.Epoch)
}

// HighestEpoch implements ReplayState.
func (r *Replay) HighestEpoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epoch
}

// Applied implements ReplayState.
func (r *Replay) Applied(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[id]
}

// RequestVerifierConfig configures a RequestVerifier.
type RequestVerifierConfig struct {
	// AllowUnsigned accepts requests without a signature. A signed request
	// is verified all the same. Off by default; turn it on only where every
	// writer to the requests topic is trusted.
	AllowUnsigned bool
	// MaxAge is how long after requested_at a request is still accepted. Default 15m.
	MaxAge time.Duration
	// MaxSkew is the clock difference tolerated for requested_at in the future. Default 30s.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRequestVerifierConfig returns the defaults.
func DefaultRequestVerifierConfig() RequestVerifierConfig {
	return RequestVerifierConfig{MaxAge: 15 * time.Minute, MaxSkew: 30 * time.Second}
}

func (c RequestVerifierConfig) validate() error {
	return errors.Join(checkPositive("RequestVerifierConfig.MaxAge", c.MaxAge), checkPositive("RequestVerifierConfig.MaxSkew", c.MaxSkew))
}

// RequestVerifier is the coordinator's decoder for the requests topic: it
// trusts the operator keys in its keyring.
type RequestVerifier struct {
	cfg  RequestVerifierConfig
	keys *Keyring
}

// NewRequestVerifier returns a verifier trusting the operator keys in keys.
func NewRequestVerifier(cfg RequestVerifierConfig, keys *Keyring) (*RequestVerifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("events: NewRequestVerifier needs a keyring")
	}
	cfg.Now = nowOr(cfg.Now)
	return &RequestVerifier{cfg: cfg, keys: keys}, nil
}

// Decode implements Decoder.
func (v *RequestVerifier) Decode(rec kafka.Message) (Delivery, error) {
	return decodeWith(rec, schema.ClassRequest, func(env Envelope) (schema.Message, error) { return v.Verify(env, v.cfg.Now()) })
}

// AcceptedUntil is the last moment a request made at requestedAt is
// accepted: MaxAge and MaxSkew later. Until then a replay of it must be
// recognised by its id; after, it is refused as expired.
func (c RequestVerifierConfig) AcceptedUntil(requestedAt time.Time) time.Time {
	return requestedAt.Add(c.MaxAge + c.MaxSkew)
}

// Verify checks a request envelope at time now: key and signature (unless
// unsigned requests are allowed and this one is unsigned), the schema, the
// headers agreeing with the body, requested_by naming the signing key, the
// key's role allowing the request's kind, and requested_at within
// [now-MaxAge-MaxSkew, now+MaxSkew]. An unsigned request, where allowed,
// is trusted as admin and its requested_by as given. Whether the request
// id was seen before is the coordinator's to check: it holds the ids.
func (v *RequestVerifier) Verify(env Envelope, now time.Time) (schema.Request, error) {
	signed := env.KeyID != "" || !v.cfg.AllowUnsigned
	if signed {
		if err := verifySignature(v.keys, env); err != nil {
			return nil, err
		}
	}
	m, err := body(env)
	if err != nil {
		return nil, err
	}
	if err := agree(env, m); err != nil {
		return nil, err
	}
	req := m.(schema.Request) // class request: every type is a Request
	h := req.Requested()
	if signed {
		if h.RequestedBy != env.KeyID {
			return nil, reject(ReasonRequesterMismatch, "request %s says requested_by %q, signed by key %q", env.ID, h.RequestedBy, env.KeyID)
		}
		if role, kind := v.keys.Role(env.KeyID), req.RequestKind(); !role.Allows(kind) {
			return nil, reject(ReasonForbidden, "request %s: key %q has role %s, %s needs %s", env.ID, env.KeyID, role, kind, Needs(kind))
		}
	}
	switch at := h.RequestedAt; {
	case now.Add(v.cfg.MaxSkew).Before(at):
		return nil, reject(ReasonNotYetValid, "request %s requested at %s, now %s", env.ID, at.Format(time.RFC3339), now.Format(time.RFC3339))
	case now.After(v.cfg.AcceptedUntil(at)):
		return nil, reject(ReasonExpired, "request %s requested at %s, older than %s", env.ID, at.Format(time.RFC3339), v.cfg.MaxAge)
	}
	return req, nil
}

var (
	_ Decoder     = (*CommandVerifier)(nil)
	_ Decoder     = (*RequestVerifier)(nil)
	_ ReplayState = (*Replay)(nil)
)
