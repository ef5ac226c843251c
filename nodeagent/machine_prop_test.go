package nodeagent

import (
	"fmt"
	"maps"
	"testing"

	"github.com/regshift/regshift/schema"
	"pgregory.net/rapid"
)

// world models what the effects do to the host, to check that no sequence of
// commands, duplicates or failed effects ever strands it.
type world struct {
	start      string          // the built-in interface the host started on
	files      map[string]bool // unpacked packages
	open       map[string]bool
	registered map[string]bool
	primary    string
	fallback   string
}

func newWorld(s State) *world {
	return &world{
		start: s.Primary, files: map[string]bool{}, open: map[string]bool{s.Primary: true},
		registered: map[string]bool{s.Primary: s.Role.Registers()}, primary: s.Primary,
	}
}

func (w *world) has(iface string) bool { return iface == w.start || w.files[iface] }

// apply performs one effect and returns a broken rule, or "".
func (w *world) apply(e Effect) string {
	switch e := e.(type) {
	case FetchPackage:
		w.files[e.Interface] = true
	case Open:
		if !w.has(e.Interface) {
			return "opened " + e.Interface + " without its package"
		}
		w.open[e.Interface] = true
	case Register:
		if !w.open[e.Interface] {
			return "registered in closed " + e.Interface
		}
		w.registered[e.Interface] = true
	case Deregister:
		w.registered[e.Interface] = false
	case SetResolveOrder:
		if !w.open[e.Primary] || (e.Fallback != "" && !w.open[e.Fallback]) {
			return fmt.Sprintf("routed resolves to a closed interface (%s, %s)", e.Primary, e.Fallback)
		}
		w.primary, w.fallback = e.Primary, e.Fallback
	case Close:
		if e.Interface == w.primary || e.Interface == w.fallback || w.registered[e.Interface] {
			return "closed " + e.Interface + " while in use"
		}
		w.open[e.Interface] = false
	case RemoveFiles:
		if w.open[e.Interface] {
			return "removed the files of open " + e.Interface
		}
		w.files[e.Interface] = false
	}
	return ""
}

// stranded says why the host has no working interface right now, or "".
func (w *world) stranded(role Role) string {
	if !w.open[w.primary] {
		return "resolves go to a closed interface " + w.primary
	}
	if role.Registers() {
		for _, r := range w.registered {
			if r {
				return ""
			}
		}
		return "registered nowhere"
	}
	return ""
}

// matches says how the world differs from what state s means, or "".
func (w *world) matches(s State) string {
	if w.primary != s.Primary || w.fallback != s.Fallback {
		return fmt.Sprintf("resolves via %s/%s, state says %s/%s", w.primary, w.fallback, s.Primary, s.Fallback)
	}
	for name, in := range s.Interfaces {
		want := s.Role.Registers() && in.Phase == schema.StateActive
		if w.registered[name] != want {
			return fmt.Sprintf("%s registered=%v, state has it %s", name, w.registered[name], in.Phase)
		}
	}
	return ""
}

func (w *world) clone() *world {
	c := *w
	c.files, c.open, c.registered = maps.Clone(w.files), maps.Clone(w.open), maps.Clone(w.registered)
	return &c
}

var (
	ifaces  = []string{"zookeeper", "consul", "etcd"}
	kinds   = []schema.CommandKind{schema.CommandInstall, schema.CommandActivate, schema.CommandSwitchBack, schema.CommandUninstall, schema.CommandResync}
	digests = []string{"sha256:aa", "sha256:bb"}
)

func genCommand() *rapid.Generator[Command] {
	return rapid.Custom(func(t *rapid.T) Command {
		c := Command{
			Kind:      rapid.SampledFrom(kinds).Draw(t, "kind"),
			Interface: rapid.SampledFrom(ifaces).Draw(t, "iface"),
		}
		if c.Kind == schema.CommandInstall {
			c.PackageURL, c.Digest = "file:///pkg/"+c.Interface, rapid.SampledFrom(digests).Draw(t, "digest")
		}
		if c.Kind == schema.CommandSwitchBack && rapid.Bool().Draw(t, "explicit-to") {
			c.To = rapid.SampledFrom(ifaces).Draw(t, "to")
		}
		// One id per intent, as the coordinator sends them; a small attempt
		// number makes true duplicates (re-sends) frequent.
		c.ID = fmt.Sprintf("%s/%s/%s/%s#%d", c.Kind, c.Interface, c.Digest, c.To, rapid.IntRange(0, 2).Draw(t, "attempt"))
		return c
	})
}

// TestNeverStranded runs random command sequences — with duplicates, refusals
// and effects failing part-way — against the world model and checks that the
// host always has a working interface, that a completed plan leaves the world
// as the state says, that a failed plan is repaired by Reconcile, and that a
// command decided again against its own result changes nothing.
func TestNeverStranded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		role := rapid.SampledFrom([]Role{RoleProvider, RoleConsumer, RoleBoth}).Draw(t, "role")
		s, err := NewState("n1", role, "zookeeper")
		if err != nil {
			t.Fatal(err)
		}
		w := newWorld(s)
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		for i := range steps {
			c := genCommand().Draw(t, fmt.Sprint("cmd", i))
			d := Decide(s, c)
			if err := d.Next.Validate(); err != nil {
				t.Fatalf("%+v led to an invalid state: %v", c, err)
			}
			if d.Ack.Status == schema.AckRejected && len(d.Effects) > 0 {
				t.Fatalf("rejected %+v but planned effects", c)
			}
			failAt := -1
			if len(d.Effects) > 0 && rapid.Bool().Draw(t, fmt.Sprint("fail", i)) {
				failAt = rapid.IntRange(0, len(d.Effects)-1).Draw(t, fmt.Sprint("failAt", i))
			}
			for j, e := range d.Effects {
				if j == failAt {
					break
				}
				if broke := w.apply(e); broke != "" {
					t.Fatalf("%+v step %d (%s): %s", c, j, e, broke)
				}
				if why := w.stranded(role); why != "" {
					t.Fatalf("%+v left the host stranded after %s: %s", c, e, why)
				}
			}
			if failAt >= 0 {
				// The runtime keeps the old state and reconciles it.
				for _, e := range Reconcile(s) {
					if broke := w.apply(e); broke != "" {
						t.Fatalf("reconcile after failed %+v: %s: %s", c, e, broke)
					}
					if why := w.stranded(role); why != "" {
						t.Fatalf("reconcile after failed %+v stranded the host at %s: %s", c, e, why)
					}
				}
				if diff := w.matches(s); diff != "" {
					t.Fatalf("reconcile did not restore the state after failed %+v: %s", c, diff)
				}
				continue
			}
			s = d.Next
			if diff := w.matches(s); diff != "" {
				t.Fatalf("after %+v the world differs from the state: %s", c, diff)
			}
			// Idempotence: the same intent under a new id is already satisfied.
			if d.Ack.Status == schema.AckDone && d.Ack.Reason != ReasonDuplicate && c.Kind != schema.CommandResync {
				again := c
				again.ID = "fresh-" + c.ID
				if d2 := Decide(s, again); len(d2.Effects) != 0 || d2.Ack.Status != schema.AckDone {
					t.Fatalf("%+v repeated against its own result: %+v %v", c, d2.Ack, d2.Effects)
				}
			}
			// Reconcile of a settled state changes nothing.
			probe := w.clone()
			for _, e := range Reconcile(s) {
				if broke := probe.apply(e); broke != "" {
					t.Fatalf("reconcile of settled state: %s: %s", e, broke)
				}
			}
			if diff := probe.matches(s); diff != "" {
				t.Fatalf("reconcile of a settled state moved the world: %s", diff)
			}
		}
	})
}
