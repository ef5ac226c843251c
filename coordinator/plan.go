package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/address"
	"github.com/regshift/regshift/schema"
)

// ErrPlan wraps every plan error; the message names the field.
var ErrPlan = errors.New("invalid rollout plan")

// On-failure actions and finalize modes a plan may name.
const (
	OnFailureSwitchBack = "switch-back"
	OnFailurePause      = "pause"
	FinalizeManual      = "manual"
	FinalizeAutomatic   = "automatic"
)

// ParsePlan decodes YAML (or JSON) into a plan, refusing unknown fields, and
// validates it. The YAML has exactly the shape of the plan in a
// create-rollout request (schema/request.create-rollout.v1.json), so a plan
// file and a request published by another system say the same thing. (The
// core reads no files: the CLI's loadPlan reads one and calls this.)
func ParsePlan(b []byte) (schema.Plan, error) {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return schema.Plan{}, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return schema.Plan{}, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var p schema.Plan
	if err := dec.Decode(&p); err != nil {
		return schema.Plan{}, fmt.Errorf("%w: %s", ErrPlan, strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := ValidatePlan(p); err != nil {
		return schema.Plan{}, err
	}
	return p, validateWire(p)
}

// validateWire checks the plan against the public JSON Schema of a
// create-rollout request, so a plan file is exactly what other systems send.
func validateWire(p schema.Plan) error {
	req := schema.CreateRollout{
		RequestHeader: schema.RequestHeader{RequestID: "plan-check", RolloutID: "plan-check", RequestedBy: "plan-check",
			RequestedAt: time.Unix(0, 0).UTC()},
		Plan: p,
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPlan, err)
	}
	if err := schema.Validate(req.MessageType(), body); err != nil {
		return fmt.Errorf("%w: %w", ErrPlan, err)
	}
	return nil
}

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	nodeRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// ValidatePlan checks the plan up front: names, references, addresses (per
// registry kind), orders, and every count and duration against the bounds
// the JSON Schema states too (schema.Plan*), worded as schema.Validate words
// a violation. The first error names its field as a path from the plan,
// e.g. "plan.gates.soak_seconds: 9300000000 is above the maximum 604800".
func ValidatePlan(p schema.Plan) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: plan.%s: %s", ErrPlan, field, fmt.Sprintf(format, args...))
	}
	for _, side := range []struct {
		field string
		in    schema.Interface
	}{{"from", p.From}, {"to", p.To}} {
		switch {
		case !nameRE.MatchString(side.in.Name):
			return bad(side.field+".name", "%q must be lower-case letters, digits and dashes", side.in.Name)
		case !registries.Kind(side.in.Kind).Valid():
			return bad(side.field+".kind", "%q, want %s", side.in.Kind, registries.KindNames())
		case side.in.Address == "":
			return bad(side.field+".address", "empty")
		}
		if err := address.Check(registries.Kind(side.in.Kind), side.in.Address); err != nil {
			return bad(side.field+".address", "%v", err)
		}
	}
	switch {
	case p.From.Name == p.To.Name:
		return bad("to.name", "%q is also the from interface", p.To.Name)
	case p.To.Package.URL == "":
		return bad("to.package.url", "empty: nodes install the new interface from it")
	case !strings.HasPrefix(p.To.Package.URL, "http://") && !strings.HasPrefix(p.To.Package.URL, "https://") && !strings.HasPrefix(p.To.Package.URL, "file://"):
		return bad("to.package.url", "%q: want an http, https or file URL", p.To.Package.URL)
	case !digestRE.MatchString(p.To.Package.Digest):
		return bad("to.package.digest", "%q: want sha256: and 64 lower-case hex digits", p.To.Package.Digest)
	case len(p.Nodes) == 0:
		return bad("nodes", "empty")
	case len(p.Nodes) > schema.PlanMaxNodes:
		return bad("nodes", "%d nodes, want at most %d", len(p.Nodes), schema.PlanMaxNodes)
	}
	seen := map[string]bool{}
	for i, n := range p.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if !nodeRE.MatchString(n.NodeID) {
			return bad(f+".node_id", "%q is not a node id", n.NodeID)
		}
		if seen[n.NodeID] {
			return bad(f+".node_id", "%q is listed twice", n.NodeID)
		}
		seen[n.NodeID] = true
		if len(n.Roles) == 0 {
			return bad(f+".roles", "empty")
		}
		for j, r := range n.Roles {
			if r != schema.RoleProvider && r != schema.RoleConsumer {
				return bad(fmt.Sprintf("%s.roles[%d]", f, j), "%q, want provider or consumer", r)
			}
		}
	}
	w, g := p.Waves, p.Gates
	for _, c := range []struct {
		field     string
		v, lo, hi int
	}{
		{"waves.canary", w.Canary, 0, schema.PlanMaxNodes},
		{"waves.max_in_flight", w.MaxInFlight, 1, schema.PlanMaxNodes},
		{"gates.ack_timeout_seconds", g.AckTimeoutSeconds, schema.PlanMinAckTimeoutSeconds, schema.PlanMaxSeconds},
		{"gates.soak_seconds", g.SoakSeconds, 0, schema.PlanMaxSeconds},
		{"gates.failure_budget", g.FailureBudget, 0, schema.PlanMaxNodes},
	} {
		switch {
		case c.v < c.lo:
			return bad(c.field, schema.BelowMinimum, c.v, c.lo)
		case c.v > c.hi:
			return bad(c.field, schema.AboveMaximum, c.v, c.hi)
		}
	}
	switch {
	case len(w.Percentages) == 0:
		return bad("waves.percentages", "empty: the last wave must reach 100")
	case len(w.Percentages) > schema.PlanMaxWaves:
		return bad("waves.percentages", "%d items, want at most %d", len(w.Percentages), schema.PlanMaxWaves)
	case w.Percentages[len(w.Percentages)-1] != 100:
		return bad("waves.percentages", "ends at %d: the last wave must reach 100", w.Percentages[len(w.Percentages)-1])
	}
	for i, pc := range w.Percentages {
		if pc <= 0 || pc > 100 || (i > 0 && pc <= w.Percentages[i-1]) {
			return bad(fmt.Sprintf("waves.percentages[%d]", i), "%d: want rising percentages in 1..100", pc)
		}
	}
	if s := g.ActivationGraceSeconds; s != nil {
		switch {
		case *s < 0:
			return bad("gates.activation_grace_seconds", schema.BelowMinimum, *s, 0)
		case *s > schema.PlanMaxGraceSeconds:
			return bad("gates.activation_grace_seconds", schema.AboveMaximum, *s, schema.PlanMaxGraceSeconds)
		}
	}
	switch {
	case g.MinHealthyRatio <= 0 || g.MinHealthyRatio > 1:
		return bad("gates.min_healthy_ratio", "%v, want a fraction in (0, 1]", g.MinHealthyRatio)
	case g.MinParity < 0 || g.MinParity > 1:
		return bad("gates.min_parity", "%v, want a fraction in [0, 1]", g.MinParity)
	case g.OnFailure != OnFailureSwitchBack && g.OnFailure != OnFailurePause:
		return bad("gates.on_failure", "%q, want switch-back or pause", g.OnFailure)
	case p.Finalize != FinalizeManual && p.Finalize != FinalizeAutomatic:
		return bad("finalize", "%q, want manual or automatic", p.Finalize)
	case p.Unowned != "" && p.Unowned != schema.UnownedRefuse && p.Unowned != schema.UnownedKeepBridge:
		return bad("unowned", "%q, want keep-bridge or refuse", p.Unowned)
	}
	return nil
}

// PlannedWave is one wave of a plan: nodes of one role moved together.
type PlannedWave struct {
	Role  string
	Nodes []string
}

// PlanWaves splits the plan's nodes into waves: provider waves first (a node
// that also consumes moves with the providers), then consumer waves; in each
// role a canary wave of Canary nodes, then waves up to each cumulative
// percentage. Nodes are taken in id order, so the split is reproducible.
func PlanWaves(p schema.Plan) []PlannedWave {
	var providers, consumers []string
	for _, n := range p.Nodes {
		if slices.Contains(n.Roles, schema.RoleProvider) {
			providers = append(providers, n.NodeID)
		} else {
			consumers = append(consumers, n.NodeID)
		}
	}
	var waves []PlannedWave
	for _, group := range []struct {
		role  string
		nodes []string
	}{{schema.RoleProvider, providers}, {schema.RoleConsumer, consumers}} {
		slices.Sort(group.nodes)
		n, done := len(group.nodes), 0
		if c := min(p.Waves.Canary, n); c > 0 {
			waves = append(waves, PlannedWave{Role: group.role, Nodes: group.nodes[:c]})
			done = c
		}
		for _, pc := range p.Waves.Percentages {
			upto := int(math.Ceil(float64(n) * float64(pc) / 100))
			if upto > done {
				waves = append(waves, PlannedWave{Role: group.role, Nodes: group.nodes[done:upto]})
				done = upto
			}
		}
	}
	return waves
}
