package schema

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Class is what a message is for; it decides the topic it travels on.
type Class string

// The classes of messages.
const (
	ClassCommand Class = "command" // coordinator -> one agent, signed
	ClassEvent   Class = "event"   // agent -> coordinator
	ClassRequest Class = "request" // operators and other systems -> coordinator
	ClassState   Class = "state"   // coordinator -> its own compacted log
)

// Version is the only message version this package speaks.
const Version = 1

// Message is a version-1 message body.
type Message interface {
	// MessageType is the full type name, e.g. "regshift.command.install.v1".
	MessageType() string
	// PartitionKey is the record key: the node id for commands and events,
	// the rollout id for requests and rollout records, "epoch" for the epoch
	// record, SeenRequestKey for a seen request.
	PartitionKey() string
}

// Spec describes one message type.
type Spec struct {
	Type    string // e.g. regshift.command.install.v1
	Class   Class
	Name    string // e.g. install
	Version int
	new     func() Message
}

// File is the schema file of the type, relative to this package.
func (s Spec) File() string { return fmt.Sprintf("%s.%s.v%d.json", s.Class, s.Name, s.Version) }

// New returns a pointer to a zero value of the type's Go type.
func (s Spec) New() Message { return s.new() }

// ErrUnknownType is returned for a type name this package does not know at any version.
var ErrUnknownType = errors.New("unknown message type")

// ErrUnsupportedVersion is returned for a known type at a version other than Version.
var ErrUnsupportedVersion = errors.New("unsupported message version")

// ErrInvalid is wrapped by every failure to validate or decode a body.
var ErrInvalid = errors.New("invalid message body")

// The version-1 type names.
const (
	TypeInstall       = "regshift.command.install.v1"
	TypeActivate      = "regshift.command.activate.v1"
	TypeSwitchBack    = "regshift.command.switch-back.v1"
	TypeUninstall     = "regshift.command.uninstall.v1"
	TypeResync        = "regshift.command.resync.v1"
	TypeAck           = "regshift.event.ack.v1"
	TypeHealth        = "regshift.event.health.v1"
	TypeHello         = "regshift.event.hello.v1"
	TypeCreateRollout = "regshift.request.create-rollout.v1"
	TypePause         = "regshift.request.pause.v1"
	TypeResume        = "regshift.request.resume.v1"
	TypeApprove       = "regshift.request.approve.v1"
	TypeAbort         = "regshift.request.abort.v1"
	TypeFinalize      = "regshift.request.finalize.v1"
	TypeRolloutRecord = "regshift.state.rollout.v1"
	TypeEpochRecord   = "regshift.state.epoch.v1"
	TypeNodeRecord    = "regshift.state.rollout-node.v1"
	TypeSeenRequest   = "regshift.state.seen-request.v1"
)

var specs = map[string]Spec{}

func init() {
	for _, m := range []Message{
		&Install{}, &Activate{}, &SwitchBack{}, &Uninstall{}, &Resync{},
		&Ack{}, &Health{}, &Hello{},
		&CreateRollout{}, &Pause{}, &Resume{}, &Approve{}, &Abort{}, &Finalize{},
		&RolloutRecord{}, &NodeRecord{}, &EpochRecord{}, &SeenRequest{},
	} {
		t := m.MessageType()
		parts := strings.SplitN(strings.TrimPrefix(t, "regshift."), ".", 3)
		rt := reflect.TypeOf(m).Elem()
		specs[t] = Spec{Type: t, Class: Class(parts[0]), Name: parts[1], Version: Version,
			new: func() Message { return reflect.New(rt).Interface().(Message) }}
	}
}

// Lookup finds the spec of a full type name. It returns ErrUnknownType or
// ErrUnsupportedVersion (wrapped) when the name is not a version-1 type.
func Lookup(typ string) (Spec, error) {
	if s, ok := specs[typ]; ok {
		return s, nil
	}
	base, ver, ok := splitVersion(typ)
	if ok {
		for _, s := range specs {
			if strings.TrimSuffix(s.Type, ".v"+strconv.Itoa(s.Version)) == base {
				return Spec{}, fmt.Errorf("%w: %q (version %d; this build speaks version %d)", ErrUnsupportedVersion, typ, ver, Version)
			}
		}
	}
	return Spec{}, fmt.Errorf("%w: %q", ErrUnknownType, typ)
}

func splitVersion(typ string) (base string, version int, ok bool) {
	i := strings.LastIndex(typ, ".v")
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(typ[i+2:])
	if err != nil || v < 0 {
		return "", 0, false
	}
	return typ[:i], v, true
}

// Specs lists every known type, sorted by type name.
func Specs() []Spec {
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}
