package nodeagent

import (
	"fmt"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/schema"
)

// Command is a verified command addressed to this host. Signature, node,
// validity window and epoch were checked before it gets here.
type Command struct {
	ID        string
	Kind      schema.CommandKind
	Interface string // the interface the command is about
	// To is the interface a switch-back returns to; empty means the current
	// fallback.
	To string
	// PackageURL and Digest name the package an install fetches.
	PackageURL string
	Digest     string
}

// Ack is the answer to one command.
type Ack struct {
	CommandID string
	Status    schema.AckOutcome
	Reason    string // why, for failed and rejected; a note for a no-op done
}

// Effect is one idempotent step the runtime carries out.
type Effect interface{ String() string }

// Effects the runtime performs. Each is safe to repeat.
type (
	// FetchPackage downloads the package, checks its sha256 against Digest
	// and unpacks it into the state directory.
	FetchPackage struct{ Interface, URL, Digest string }
	// Open connects the interface's registry client.
	Open struct{ Interface string }
	// Register registers the host's services in the interface's registry.
	Register struct{ Interface string }
	// Deregister removes the host's registrations from that registry.
	Deregister struct{ Interface string }
	// SetResolveOrder routes the host's resolves: Primary first, Fallback when
	// the primary's answer is empty or below the parity threshold.
	SetResolveOrder struct{ Primary, Fallback string }
	// Close disconnects the interface's registry client.
	Close struct{ Interface string }
	// RemoveFiles deletes the interface's package from the state directory.
	RemoveFiles struct{ Interface string }
)

func (e FetchPackage) String() string {
	return fmt.Sprintf("fetch %s package %s (%s)", e.Interface, e.URL, e.Digest)
}
func (e Open) String() string       { return "open " + e.Interface }
func (e Register) String() string   { return "register in " + e.Interface }
func (e Deregister) String() string { return "deregister from " + e.Interface }
func (e SetResolveOrder) String() string {
	return fmt.Sprintf("resolve via %s, fallback %q", e.Primary, e.Fallback)
}
func (e Close) String() string       { return "close " + e.Interface }
func (e RemoveFiles) String() string { return "remove files of " + e.Interface }

// Decision is what Decide makes of one command: carry out Effects in order;
// if all succeed, adopt Next and send Ack. If one fails, keep the old state,
// run Reconcile on it, and send a failed ack naming the effect. A decision
// with no effects is final at once.
type Decision struct {
	Next    State
	Effects []Effect
	Ack     Ack
}

// Reasons for refusals, stable strings other systems may match on.
const (
	ReasonUnknownKind      = "unknown-command"
	ReasonNotInstalled     = "not-installed"
	ReasonDigestConflict   = "digest-conflict"
	ReasonPrimary          = "interface-is-primary"
	ReasonNoTarget         = "no-interface-to-switch-back-to"
	ReasonMissingArgument  = "missing-argument"
	ReasonDuplicate        = "duplicate"
	ReasonAlreadySatisfied = "already-satisfied"
)

// Decide is the agent's state machine. It never strands the host: every
// reachable state has an active primary interface, and every plan registers
// or routes to the new interface before it deregisters from or stops routing
// to the old one.
func Decide(s State, c Command) Decision {
	if c.ID != "" && s.applied(c.ID) {
		return Decision{Next: s, Ack: Ack{CommandID: c.ID, Status: schema.AckDone, Reason: ReasonDuplicate}}
	}
	if c.Interface == "" && c.Kind != schema.CommandResync {
		return reject(s, c, ReasonMissingArgument, "command names no interface")
	}
	switch c.Kind {
	case schema.CommandInstall:
		return decideInstall(s, c)
	case schema.CommandActivate:
		return decideActivate(s, c)
	case schema.CommandSwitchBack:
		return decideSwitchBack(s, c)
	case schema.CommandUninstall:
		return decideUninstall(s, c)
	case schema.CommandResync:
		return done(s, c, "", Reconcile(s)...)
	default:
		return reject(s, c, ReasonUnknownKind, fmt.Sprintf("unknown command kind %q", c.Kind))
	}
}

func decideInstall(s State, c Command) Decision {
	if c.Digest == "" || c.PackageURL == "" {
		return reject(s, c, ReasonMissingArgument, "install names no package URL or digest")
	}
	cur := s.Interfaces[c.Interface]
	switch cur.Phase {
	case schema.StateActive, schema.StateStandby:
		if cur.Digest == c.Digest {
			return done(s, c, ReasonAlreadySatisfied)
		}
		return reject(s, c, ReasonDigestConflict,
			fmt.Sprintf("%s is %s with package %s; uninstall it before installing %s", c.Interface, cur.Phase, cur.Digest, c.Digest))
	case schema.StateInstalled:
		if cur.Digest == c.Digest {
			return done(s, c, ReasonAlreadySatisfied)
		}
	}
	next := s.Clone()
	next.Interfaces[c.Interface] = agentapi.Interface{Name: c.Interface, Phase: schema.StateInstalled, Digest: c.Digest}
	return done(next, c, "", FetchPackage{Interface: c.Interface, URL: c.PackageURL, Digest: c.Digest})
}

// decideActivate makes the interface active and primary; the previous
// primary stays active as the fallback (providers stay registered in it,
// consumers fall back to it).
func decideActivate(s State, c Command) Decision {
	x := c.Interface
	switch s.Phase(x) {
	case schema.StateAbsent, schema.StateRemoved:
		return reject(s, c, ReasonNotInstalled, x+" is not installed")
	}
	if s.Primary == x {
		return done(s, c, ReasonAlreadySatisfied)
	}
	next := s.Clone()
	old := s.Primary
	// Only two interfaces are ever active: a third (the old fallback) goes
	// to standby once the new primary is registered and routed to.
	retired := ""
	if s.Fallback != "" && s.Fallback != x {
		retired = s.Fallback
		next.Interfaces[retired] = withPhase(s.Interfaces[retired], schema.StateStandby)
	}
	next.Interfaces[x] = withPhase(s.Interfaces[x], schema.StateActive)
	next.Primary, next.Fallback = x, old
	effects := []Effect{Open{x}}
	if s.Role.Registers() {
		effects = append(effects, Register{x})
	}
	effects = append(effects, SetResolveOrder{Primary: x, Fallback: old})
	if retired != "" && s.Role.Registers() {
		effects = append(effects, Deregister{retired})
	}
	return done(next, c, "", effects...)
}

// decideSwitchBack makes the target (the fallback unless named) primary
// again and puts the interface in standby: route and register first,
// deregister last. Only the primary can be switched back from; for any other
// interface the host already runs without it.
func decideSwitchBack(s State, c Command) Decision {
	x := c.Interface
	if s.Primary != x {
		return done(s, c, ReasonAlreadySatisfied)
	}
	to := c.To
	if to == "" {
		to = s.Fallback
	}
	if to == "" || to == x || !present(s.Phase(to)) {
		return reject(s, c, ReasonNoTarget, fmt.Sprintf("no installed interface to switch back to from %s", x))
	}
	next := s.Clone()
	next.Interfaces[to] = withPhase(s.Interfaces[to], schema.StateActive)
	next.Interfaces[x] = withPhase(s.Interfaces[x], schema.StateStandby)
	retire := []string{x}
	if s.Fallback != "" && s.Fallback != to {
		next.Interfaces[s.Fallback] = withPhase(s.Interfaces[s.Fallback], schema.StateStandby)
		retire = append(retire, s.Fallback)
	}
	next.Primary, next.Fallback = to, ""
	effects := []Effect{Open{to}}
	if s.Role.Registers() {
		effects = append(effects, Register{to})
	}
	effects = append(effects, SetResolveOrder{Primary: to})
	if s.Role.Registers() {
		for _, r := range retire {
			effects = append(effects, Deregister{r})
		}
	}
	return done(next, c, "", effects...)
}

func decideUninstall(s State, c Command) Decision {
	x := c.Interface
	switch s.Phase(x) {
	case schema.StateAbsent, schema.StateRemoved:
		return done(s, c, ReasonAlreadySatisfied)
	}
	if s.Primary == x {
		return reject(s, c, ReasonPrimary, x+" is the primary interface; activate or switch back to another first")
	}
	next := s.Clone()
	in := s.Interfaces[x]
	var effects []Effect
	if s.Fallback == x {
		next.Fallback = ""
		effects = append(effects, SetResolveOrder{Primary: s.Primary})
	}
	if s.Role.Registers() && in.Phase == schema.StateActive {
		effects = append(effects, Deregister{x})
	}
	effects = append(effects, Close{x}, RemoveFiles{x})
	next.Interfaces[x] = agentapi.Interface{Name: x, Phase: schema.StateRemoved}
	return done(next, c, "", effects...)
}

// Reconcile lists the effects that make the world match s: every active
// interface open (and registered in, for providers), resolves routed as s
// says, installed and standby interfaces holding no registration (a failed
// activate may have left one). Used after a restart and after a failed plan;
// safe to run at any time.
func Reconcile(s State) []Effect {
	var out []Effect
	for _, name := range s.Active() {
		out = append(out, Open{name})
		if s.Role.Registers() {
			out = append(out, Register{name})
		}
	}
	out = append(out, SetResolveOrder{Primary: s.Primary, Fallback: s.Fallback})
	if s.Role.Registers() {
		for _, name := range s.Names() {
			if p := s.Interfaces[name].Phase; p == schema.StateStandby || p == schema.StateInstalled {
				out = append(out, Deregister{name})
			}
		}
	}
	return out
}

func withPhase(in agentapi.Interface, p schema.InterfacePhase) agentapi.Interface {
	in.Phase = p
	return in
}

func done(next State, c Command, note string, effects ...Effect) Decision {
	if c.ID != "" {
		next = next.Clone()
		next.markApplied(c.ID)
	}
	return Decision{Next: next, Effects: effects, Ack: Ack{CommandID: c.ID, Status: schema.AckDone, Reason: note}}
}

func reject(s State, c Command, reason, detail string) Decision {
	return Decision{Next: s, Ack: Ack{CommandID: c.ID, Status: schema.AckRejected, Reason: reasonOf(reason, detail)}}
}

// reasonOf is an ack's reason: the stable code others match on, then what
// happened, cut to fit schema.MaxDetail (a raw error can be of any length).
func reasonOf(code, detail string) string {
	return code + ": " + schema.Truncate(detail, schema.MaxDetail-len(code)-len(": "))
}
