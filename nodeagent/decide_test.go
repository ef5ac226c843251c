package nodeagent

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/schema"
)

func mustState(t *testing.T, role Role) State {
	t.Helper()
	s, err := NewState("node-1", role, "zookeeper")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func effectStrings(es []Effect) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.String()
	}
	return strings.Join(out, "; ")
}

// TestLifecycle walks a provider and a consumer through
// install -> activate -> switch back -> activate -> uninstall of the old one,
// checking the effects, the ack and the state after each step.
func TestLifecycle(t *testing.T) {
	install := Command{ID: "c1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "file:///p.tgz", Digest: "sha256:aa"}
	activate := Command{ID: "c2", Kind: schema.CommandActivate, Interface: "consul"}
	back := Command{ID: "c3", Kind: schema.CommandSwitchBack, Interface: "consul"}
	again := Command{ID: "c4", Kind: schema.CommandActivate, Interface: "consul"}
	uninstallOld := Command{ID: "c5", Kind: schema.CommandUninstall, Interface: "zookeeper"}

	type step struct {
		cmd               Command
		effects           string
		primary, fallback string
		phases            string // zookeeper/consul
	}
	tests := []struct {
		role  Role
		steps []step
	}{
		{RoleProvider, []step{
			{install, "fetch consul package file:///p.tgz (sha256:aa)", "zookeeper", "", "active/installed"},
			{activate, `open consul; register in consul; resolve via consul, fallback "zookeeper"`, "consul", "zookeeper", "active/active"},
			{back, `open zookeeper; register in zookeeper; resolve via zookeeper, fallback ""; deregister from consul`, "zookeeper", "", "active/standby"},
			{again, `open consul; register in consul; resolve via consul, fallback "zookeeper"`, "consul", "zookeeper", "active/active"},
			{uninstallOld, `resolve via consul, fallback ""; deregister from zookeeper; close zookeeper; remove files of zookeeper`, "consul", "", "removed/active"},
		}},
		{RoleConsumer, []step{
			{install, "fetch consul package file:///p.tgz (sha256:aa)", "zookeeper", "", "active/installed"},
			{activate, `open consul; resolve via consul, fallback "zookeeper"`, "consul", "zookeeper", "active/active"},
			{back, `open zookeeper; resolve via zookeeper, fallback ""`, "zookeeper", "", "active/standby"},
			{again, `open consul; resolve via consul, fallback "zookeeper"`, "consul", "zookeeper", "active/active"},
			{uninstallOld, `resolve via consul, fallback ""; close zookeeper; remove files of zookeeper`, "consul", "", "removed/active"},
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			s := mustState(t, tt.role)
			for _, st := range tt.steps {
				d := Decide(s, st.cmd)
				if d.Ack.Status != schema.AckDone {
					t.Fatalf("%s: ack %+v", st.cmd.ID, d.Ack)
				}
				if got := effectStrings(d.Effects); got != st.effects {
					t.Fatalf("%s effects:\n got %s\nwant %s", st.cmd.ID, got, st.effects)
				}
				s = d.Next
				if err := s.Validate(); err != nil {
					t.Fatalf("%s: %v", st.cmd.ID, err)
				}
				phases := string(s.Phase("zookeeper")) + "/" + string(s.Phase("consul"))
				if s.Primary != st.primary || s.Fallback != st.fallback || phases != st.phases {
					t.Fatalf("%s: primary=%s fallback=%q phases=%s, want %s %q %s",
						st.cmd.ID, s.Primary, s.Fallback, phases, st.primary, st.fallback, st.phases)
				}
				if s.LastCommand != st.cmd.ID || !slices.Contains(s.Applied, st.cmd.ID) {
					t.Fatalf("%s not recorded as applied: %v", st.cmd.ID, s.Applied)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	base := mustState(t, RoleBoth)
	installed := Decide(base, Command{ID: "i", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "u", Digest: "sha256:aa"}).Next
	active := Decide(installed, Command{ID: "a", Kind: schema.CommandActivate, Interface: "consul"}).Next
	tests := []struct {
		name   string
		s      State
		cmd    Command
		reason string
	}{
		{"activate absent", base, Command{ID: "x", Kind: schema.CommandActivate, Interface: "consul"}, ReasonNotInstalled},
		{"uninstall primary", base, Command{ID: "x", Kind: schema.CommandUninstall, Interface: "zookeeper"}, ReasonPrimary},
		{"uninstall new primary", active, Command{ID: "x", Kind: schema.CommandUninstall, Interface: "consul"}, ReasonPrimary},
		{"switch back with nowhere to go", installed, Command{ID: "x", Kind: schema.CommandSwitchBack, Interface: "zookeeper"}, ReasonNoTarget},
		{"switch back to absent", active, Command{ID: "x", Kind: schema.CommandSwitchBack, Interface: "consul", To: "etcd"}, ReasonNoTarget},
		{"install other digest over active", active, Command{ID: "x", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "u", Digest: "sha256:bb"}, ReasonDigestConflict},
		{"install without digest", base, Command{ID: "x", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "u"}, ReasonMissingArgument},
		{"no interface", base, Command{ID: "x", Kind: schema.CommandActivate}, ReasonMissingArgument},
		{"unknown kind", base, Command{ID: "x", Kind: "reboot", Interface: "consul"}, ReasonUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.s, tt.cmd)
			if d.Ack.Status != schema.AckRejected || !strings.HasPrefix(d.Ack.Reason, tt.reason+": ") {
				t.Fatalf("ack %+v, want rejected %s", d.Ack, tt.reason)
			}
			if len(d.Effects) != 0 {
				t.Fatalf("a refusal planned effects: %s", effectStrings(d.Effects))
			}
			if fmt.Sprint(d.Next) != fmt.Sprint(tt.s) {
				t.Fatalf("a refusal changed the state:\n%v\n%v", d.Next, tt.s)
			}
		})
	}
}

func TestDuplicateIsAckedWithoutWork(t *testing.T) {
	s := mustState(t, RoleProvider)
	c := Command{ID: "c1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "u", Digest: "sha256:aa"}
	first := Decide(s, c)
	if len(first.Effects) != 1 {
		t.Fatalf("first install planned %s", effectStrings(first.Effects))
	}
	dup := Decide(first.Next, c)
	if dup.Ack.Status != schema.AckDone || dup.Ack.Reason != ReasonDuplicate || len(dup.Effects) != 0 {
		t.Fatalf("duplicate: %+v effects %s", dup.Ack, effectStrings(dup.Effects))
	}
}

func TestAppliedIsBounded(t *testing.T) {
	s := mustState(t, RoleConsumer)
	for i := range MaxApplied + 10 {
		s = Decide(s, Command{ID: fmt.Sprint("r", i), Kind: schema.CommandResync}).Next
	}
	if len(s.Applied) != MaxApplied || s.Applied[0] != "r10" || s.LastCommand != fmt.Sprint("r", MaxApplied+9) {
		t.Fatalf("applied has %d ids from %s, last %s", len(s.Applied), s.Applied[0], s.LastCommand)
	}
}

func TestValidateRefusesBrokenStates(t *testing.T) {
	good := mustState(t, RoleProvider)
	tests := map[string]func(s *State){
		"no node":    func(s *State) { s.Node = "" },
		"bad role":   func(s *State) { s.Role = "router" },
		"no primary": func(s *State) { s.Primary = "" },
		"primary standby": func(s *State) {
			s.Interfaces["zookeeper"] = agentapi.Interface{Name: "zookeeper", Phase: schema.StateStandby}
		},
		"fallback is primary": func(s *State) { s.Fallback = "zookeeper" },
		"fallback absent":     func(s *State) { s.Fallback = "consul" },
		"stray active":        func(s *State) { s.Interfaces["consul"] = agentapi.Interface{Name: "consul", Phase: schema.StateActive} },
		"misnamed": func(s *State) {
			s.Interfaces["consul"] = agentapi.Interface{Name: "etcd", Phase: schema.StateInstalled}
		},
		"unknown phase": func(s *State) { s.Interfaces["consul"] = agentapi.Interface{Name: "consul", Phase: "dreaming"} },
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			s := good.Clone()
			breakIt(&s)
			if err := s.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
