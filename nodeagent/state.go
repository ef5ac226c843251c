package nodeagent

import (
	"fmt"
	"slices"
	"sort"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/schema"
)

// Role says what a host does with the registry.
type Role string

// Roles.
const (
	RoleProvider Role = "provider" // registers its services
	RoleConsumer Role = "consumer" // resolves services for its apps
	RoleBoth     Role = "both"
)

// Registers reports whether hosts of this role register services.
func (r Role) Registers() bool { return r == RoleProvider || r == RoleBoth }

// Resolves reports whether hosts of this role resolve services.
func (r Role) Resolves() bool { return r == RoleConsumer || r == RoleBoth }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.Registers() || r.Resolves() }

// present reports whether the interface's package is on disk.
func present(p schema.InterfacePhase) bool {
	return p == schema.StateInstalled || p == schema.StateActive || p == schema.StateStandby
}

// State is everything the agent decides from. It is persisted atomically by
// the runtime and restored on start.
type State struct {
	Node string `json:"node"`
	Role Role   `json:"role"`
	// Interfaces are keyed by name; the local API's status lists the same
	// records.
	Interfaces map[string]agentapi.Interface `json:"interfaces"`
	// Primary is the interface the host registers in and resolves through
	// first. It is always active.
	Primary string `json:"primary"`
	// Fallback is the interface consumers resolve through when the primary's
	// answer is empty or fails the parity threshold; providers stay
	// registered in it. Empty, or active and not the primary.
	Fallback string `json:"fallback,omitempty"`
	// Applied lists the ids of the last commands that were carried out, oldest
	// first, so that a re-sent command is acked again without redoing it.
	Applied []string `json:"applied,omitempty"`
	// LastCommand is the id of the last command carried out.
	LastCommand string `json:"lastCommand,omitempty"`
}

// MaxApplied bounds State.Applied. A command re-sent after that many newer
// commands were applied is decided afresh, which every command kind allows:
// deciding a command against the state it produced is a no-op.
const MaxApplied = 1024

// NewState is the state of a host that starts on one working interface (the
// one the fleet uses today, e.g. ZooKeeper), active and primary.
func NewState(node string, role Role, start string) (State, error) {
	s := State{
		Node:       node,
		Role:       role,
		Interfaces: map[string]agentapi.Interface{start: {Name: start, Phase: schema.StateActive}},
		Primary:    start,
	}
	return s, s.Validate()
}

// Validate checks the invariants every reachable state keeps; a state read
// from disk that breaks them is refused.
func (s State) Validate() error {
	switch {
	case s.Node == "":
		return fmt.Errorf("state: node is empty")
	case !s.Role.Valid():
		return fmt.Errorf("state: role %q is not provider, consumer or both", s.Role)
	case s.Primary == "":
		return fmt.Errorf("state: no primary interface")
	}
	if p := s.Interfaces[s.Primary].Phase; p != schema.StateActive {
		return fmt.Errorf("state: primary interface %q is %s, want active", s.Primary, p)
	}
	if s.Fallback != "" {
		if s.Fallback == s.Primary {
			return fmt.Errorf("state: fallback %q is also the primary", s.Fallback)
		}
		if p := s.Interfaces[s.Fallback].Phase; p != schema.StateActive {
			return fmt.Errorf("state: fallback interface %q is %s, want active", s.Fallback, p)
		}
	}
	for name, in := range s.Interfaces {
		if in.Name != name {
			return fmt.Errorf("state: interface keyed %q is named %q", name, in.Name)
		}
		switch in.Phase {
		case schema.StateInstalled, schema.StateStandby, schema.StateRemoved:
		case schema.StateActive:
			if name != s.Primary && name != s.Fallback {
				return fmt.Errorf("state: interface %q is active but neither primary nor fallback", name)
			}
		default:
			return fmt.Errorf("state: interface %q has unknown phase %q", name, in.Phase)
		}
	}
	return nil
}

// Clone returns a deep copy.
func (s State) Clone() State {
	c := s
	c.Interfaces = make(map[string]agentapi.Interface, len(s.Interfaces))
	for k, v := range s.Interfaces {
		c.Interfaces[k] = v
	}
	c.Applied = slices.Clone(s.Applied)
	return c
}

// Phase returns the phase of the named interface (absent when unknown).
func (s State) Phase(name string) schema.InterfacePhase {
	if in, ok := s.Interfaces[name]; ok {
		return in.Phase
	}
	return schema.StateAbsent
}

// Active returns the active interfaces, primary first.
func (s State) Active() []string {
	out := []string{s.Primary}
	if s.Fallback != "" {
		out = append(out, s.Fallback)
	}
	return out
}

// Names returns the interface names in a stable order.
func (s State) Names() []string {
	names := make([]string, 0, len(s.Interfaces))
	for n := range s.Interfaces {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s State) applied(id string) bool { return slices.Contains(s.Applied, id) }

func (s *State) markApplied(id string) {
	s.Applied = append(s.Applied, id)
	if over := len(s.Applied) - MaxApplied; over > 0 {
		s.Applied = slices.Delete(s.Applied, 0, over)
	}
	s.LastCommand = id
}
