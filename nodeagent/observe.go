package nodeagent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// InterfaceObservation is what the agent sees of one interface.
type InterfaceObservation struct {
	Name      string
	Phase     schema.InterfacePhase
	Primary   bool
	Connected bool
	Status    schema.HealthStatus
	// Expected and Registered count this host's registrations that should
	// be and that were read back from the registry.
	Expected, Registered int
	Missing              []string // instance ids not read back
	Failing              []string // app checks failing, "instance (kind): output"
	FailingBefore        []string // those failing since before the primary changed
	// Probes are a consumer's probes of the endpoints this interface
	// resolves; ProbeDetail, on a primary they failed, names the services
	// and endpoints.
	Probes       []schema.Probe
	ProbeDetail  string
	ProbeFailing int    // services the probes failed
	Errors       uint64 // failed operations on this interface so far
	// Detail says why the status is not passing. When Missing has ids it
	// says how many of Expected, and the health report lists them after it.
	Detail string
}

// ServiceParity compares one consumed service between the primary and the
// fallback interface, as instance sets.
type ServiceParity struct {
	Service string
	Same    bool
	Missing []string // ids the fallback has and the primary lacks
	Extra   []string // ids the primary has and the fallback lacks
}

// Observation is one health report's content.
type Observation struct {
	At            time.Time
	Interfaces    []InterfaceObservation
	Services      []ServiceParity
	LastCommand   string
	Checks        []schema.AppCheck // the app checks, as the report carries them
	ChecksFailing int               // app checks critical, all of them
}

// Observe reads back, from every interface the host has open, whether it
// answers, this host's registrations, and for consumed services whether the
// primary and the fallback resolve the same instance set.
func (h *Host) Observe(ctx context.Context, s State, now time.Time) Observation {
	obs := Observation{At: now, LastCommand: s.LastCommand, Checks: h.checks.report(), ChecksFailing: h.checks.critical()}
	answers := map[string]map[string][]registries.Instance{} // iface -> service -> set
	add := func(o InterfaceObservation) {
		o.Errors = h.errorsOf(o.Name)
		obs.Interfaces = append(obs.Interfaces, o)
	}
	for _, name := range s.Names() {
		in := s.Interfaces[name]
		if in.Phase == schema.StateRemoved || in.Phase == schema.StateAbsent {
			continue
		}
		o := InterfaceObservation{Name: name, Phase: in.Phase, Primary: name == s.Primary, Status: schema.HealthUnknown}
		c, open := h.Client(name)
		if !open {
			o.Detail = "not open"
			add(o)
			continue
		}
		if err := c.Ping(ctx); err != nil {
			o.Status, o.Detail = schema.HealthCritical, err.Error()
			h.countError(name)
			add(o)
			continue
		}
		o.Connected, o.Status = true, schema.HealthPassing
		if h.cfg.Role.Registers() && in.Phase == schema.StateActive {
			for _, want := range h.Instances() {
				if critical, _ := h.checks.status(want.ID); critical {
					continue // marked critical or withdrawn: not read back as healthy
				}
				o.Expected++
				got, err := c.Resolve(ctx, want.Service)
				if err != nil {
					h.countError(name)
					o.Missing = append(o.Missing, want.ID)
					continue
				}
				if slices.ContainsFunc(got, func(i registries.Instance) bool { return i.ID == want.ID }) {
					o.Registered++
				} else {
					o.Missing = append(o.Missing, want.ID)
				}
			}
			if o.Registered < o.Expected {
				o.Status, o.Detail = schema.HealthCritical, fmt.Sprintf("registrations missing: %d of %d", len(o.Missing), o.Expected)
			}
			// The app does not work: no interface it is offered through
			// works for its consumers. An app that broke since the
			// primary changed (the activate, as this run saw it) is the
			// node's failure; one broken since before is no verdict on
			// the interface: a warning, named the same.
			since, before := h.checks.failing(h.primaryChanged())
			switch {
			case len(since) > 0:
				o.Status, o.Failing, o.FailingBefore = schema.HealthCritical, since, before
			case len(before) > 0 && o.Status == schema.HealthPassing:
				o.Status, o.FailingBefore = schema.HealthWarning, before
			default:
				o.FailingBefore = before
			}
		}
		if h.cfg.Role.Resolves() && in.Phase == schema.StateActive {
			answers[name] = map[string][]registries.Instance{}
			for _, svc := range h.cfg.Consumes {
				got, err := c.Resolve(ctx, svc)
				if err != nil {
					h.countError(name)
					continue
				}
				answers[name][svc] = got
			}
		}
		add(o)
	}
	if s.Fallback != "" && answers[s.Primary] != nil && answers[s.Fallback] != nil {
		differ := 0
		for _, svc := range h.cfg.Consumes {
			p := ServiceParity{Service: svc}
			p.Missing, p.Extra = diffIDs(answers[s.Primary][svc], answers[s.Fallback][svc])
			p.Same = len(p.Missing) == 0 && len(p.Extra) == 0
			if !p.Same {
				differ++
			}
			obs.Services = append(obs.Services, p)
		}
		for i := range obs.Interfaces {
			if o := &obs.Interfaces[i]; differ > 0 && o.Primary && o.Status == schema.HealthPassing {
				o.Status = schema.HealthWarning
				o.Detail = fmt.Sprintf("resolves of %d of %d services differ from the fallback", differ, len(h.cfg.Consumes))
			}
		}
		h.probe(ctx, s, answers, &obs)
	}
	return obs
}

// probe runs a round of consumer probes over what the primary and the
// fallback resolved, and folds it into obs: each interface's probes, and a
// primary whose endpoints refuse where the fallback's accept is critical.
// Only while there is a fallback: with nothing to compare a probe could
// blame no interface, and a fleet at rest is not probed at all.
func (h *Host) probe(ctx context.Context, s State, answers map[string]map[string][]registries.Instance, obs *Observation) {
	r := h.prober.round(ctx, s.Primary, s.Fallback, h.cfg.Consumes, answers[s.Primary], answers[s.Fallback])
	for i := range obs.Interfaces {
		switch o := &obs.Interfaces[i]; o.Name {
		case s.Primary:
			o.Probes = r.Primary
			if len(r.Failing) > 0 {
				o.Status, o.ProbeDetail, o.ProbeFailing = schema.HealthCritical, r.Detail, len(r.Failing)
			}
		case s.Fallback:
			o.Probes = r.Fallback
		}
	}
}

// diffIDs returns the ids of reference missing from candidate, and the ids
// of candidate absent from reference, sorted.
func diffIDs(candidate, reference []registries.Instance) (missing, extra []string) {
	in := func(set []registries.Instance, id string) bool {
		return slices.ContainsFunc(set, func(i registries.Instance) bool { return i.ID == id })
	}
	for _, r := range reference {
		if !in(candidate, r.ID) {
			missing = append(missing, r.ID)
		}
	}
	for _, c := range candidate {
		if !in(reference, c.ID) {
			extra = append(extra, c.ID)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}
