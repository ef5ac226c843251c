package nodeagent

import (
	"context"
	"fmt"
	"time"

	"github.com/regshift/regshift/nodeagent/agentapi"
	"github.com/regshift/regshift/schema"
)

func (a *Agent) notifyChange() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// healthLoop publishes Health every HealthInterval and on every change.
func (a *Agent) healthLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.changed:
		}
		octx, cancel := context.WithTimeout(ctx, a.cfg.HealthInterval)
		obs := a.host.Observe(octx, a.state(), a.deps.Now())
		cancel()
		a.mu.Lock()
		a.lastObs = obs
		a.mu.Unlock()
		a.m.observed(obs)
		if err := a.publish(ctx, healthOf(a.cfg.Node, obs)); err != nil && ctx.Err() == nil {
			a.log.Warn("publish health", "err", err)
		}
	}
}

// observed sets the gauges an observation speaks of.
func (m *metrics) observed(o Observation) {
	probes := 0
	for _, i := range o.Interfaces {
		probes += i.ProbeFailing
	}
	m.checksFailing.Set(float64(o.ChecksFailing))
	m.probesFailing.Set(float64(probes))
}

// healthOf is node's health report of an observation. Each interface's
// detail says how many instances are missing or differ and lists as many as
// fit: the report always encodes, however many there are.
func healthOf(node string, o Observation) *schema.Health {
	h := &schema.Health{NodeID: node, ObservedAt: o.At.UTC(), Checks: o.Checks}
	for _, i := range o.Interfaces[:min(len(o.Interfaces), maxInterfaces)] {
		var ls []listing
		if i.ProbeDetail != "" {
			ls = append(ls, listing{label: i.ProbeDetail})
		}
		if len(i.Failing) > 0 {
			ls = append(ls, listing{fmt.Sprintf("app check failing (%d)", len(i.Failing)), i.Failing})
		}
		if len(i.FailingBefore) > 0 {
			ls = append(ls, listing{fmt.Sprintf("app check failing since before the activate (%d)", len(i.FailingBefore)), i.FailingBefore})
		}
		ls = append(ls, listing{label: i.Detail, items: i.Missing})
		if i.Primary {
			for _, p := range o.Services {
				if len(p.Missing) > 0 {
					ls = append(ls, listing{fmt.Sprintf("%s: %d missing", p.Service, len(p.Missing)), p.Missing})
				}
				if len(p.Extra) > 0 {
					ls = append(ls, listing{fmt.Sprintf("%s: %d extra", p.Service, len(p.Extra)), p.Extra})
				}
			}
		}
		h.Interfaces = append(h.Interfaces, schema.InterfaceHealth{Name: i.Name, State: i.Phase, Status: i.Status,
			Resolved: i.Registered, Failed: int(i.Errors), Detail: detailOf(ls...), Probes: i.Probes})
	}
	return h
}

// sayHello publishes Hello, trying again every second until it is out or
// ctx ends.
func (a *Agent) sayHello(ctx context.Context) {
	for ctx.Err() == nil {
		if err := a.publish(ctx, a.hello()); err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Bounds of what Hello and Health carry (event.hello.v1.json,
// event.health.v1.json).
const (
	maxVersion    = 64   // agent_version's maxLength
	maxServices   = 1024 // services' maxItems: Config.validate holds Services and Consumes to it
	maxInterfaces = 16   // interfaces' maxItems
	maxAddress    = 1024 // an interface's address's maxLength
)

// hello is the agent's inventory. It leaves out the interfaces removed
// (or never installed): the coordinator reads a missing interface as
// absent, the same as a removed one, which has no package left to name its
// kind, and a host keeps the name of every interface it ever had.
func (a *Agent) hello() *schema.Hello {
	s := a.state()
	a.mu.Lock()
	epoch := a.cp.Epoch
	a.mu.Unlock()
	h := &schema.Hello{NodeID: a.cfg.Node, AgentVersion: schema.Truncate(Version, maxVersion), StartedAt: a.started.UTC(),
		HighestEpoch: epoch, LastCommandID: s.LastCommand}
	if a.cfg.Role.Registers() {
		h.Roles = append(h.Roles, schema.RoleProvider)
		for _, svc := range a.cfg.Services {
			h.Services = append(h.Services, schema.Service{Name: svc.Name, Role: schema.RoleProvider})
		}
	}
	if a.cfg.Role.Resolves() {
		h.Roles = append(h.Roles, schema.RoleConsumer)
		for _, svc := range a.cfg.Consumes {
			h.Services = append(h.Services, schema.Service{Name: svc, Role: schema.RoleConsumer})
		}
	}
	for _, name := range s.Names() {
		in := s.Interfaces[name]
		if in.Phase == schema.StateRemoved || in.Phase == schema.StateAbsent || len(h.Interfaces) == maxInterfaces {
			continue
		}
		is := schema.InterfaceState{Name: name, PackageDigest: in.Digest, State: in.Phase}
		if spec, err := a.host.Spec(s, name); err == nil {
			is.Kind, is.Address = spec.Type, schema.Truncate(spec.Settings.Address, maxAddress)
		}
		h.Interfaces = append(h.Interfaces, is)
	}
	return h
}

// Status is the local API's /v1/status.
func (a *Agent) Status() agentapi.Status {
	a.mu.Lock()
	cp, obs := a.cp, a.lastObs
	a.mu.Unlock()
	st := agentapi.Status{Node: cp.State.Node, Role: string(cp.State.Role), Primary: cp.State.Primary, Fallback: cp.State.Fallback,
		LastCommand: cp.State.LastCommand, CommandsOffset: cp.CommandsOffset, Epoch: cp.Epoch}
	for _, name := range cp.State.Names() {
		st.Interfaces = append(st.Interfaces, cp.State.Interfaces[name])
	}
	for _, o := range obs.Interfaces {
		for _, in := range a.host.Instances() {
			missing := false
			for _, id := range o.Missing {
				missing = missing || id == in.ID
			}
			if o.Expected == 0 {
				continue
			}
			st.Registrations = append(st.Registrations, agentapi.Registration{Interface: o.Name, Service: in.Service, ID: in.ID,
				Address: in.Address, Port: in.Port, Registered: !missing, Error: o.Detail})
		}
	}
	return st
}
