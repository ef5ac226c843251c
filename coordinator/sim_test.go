package coordinator

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/schema"
)

// sim runs a rollout against in-process agents — the real agent state
// machine — over a model of Kafka: each node's commands arrive in order
// (one partition per node), events may be delayed, duplicated and
// reordered across nodes. It checks the safety invariants after every step.
// tb is what the sim needs of a test: *testing.T and *rapid.T both have it.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type sim struct {
	t      tb
	r      Rollout
	now    time.Time
	agents map[string]nodeagent.State
	cmdQ   map[string][]Command
	events []Input
	// newHealthy says whether the new registry is healthy now.
	newHealthy bool
	parity     float64
	unowned    int // old-registry instances no node of the plan registered

	ids         map[string]string // intent -> id: one id per intent
	finalizeReq bool
	log         []string
	// failover, when set, checks every step against a replica that starts
	// from the persisted records (see checkFailover and persist).
	failover bool
	head     schema.RolloutRecord
	nodes    map[int]schema.NodeRecord
}

func newSim(t tb, p schema.Plan) *sim {
	t.Helper()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r, out, err := NewRollout("ro-1", p, 1, start)
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, r: r, now: start, agents: map[string]nodeagent.State{}, cmdQ: map[string][]Command{},
		newHealthy: true, parity: 1, ids: map[string]string{}, nodes: map[int]schema.NodeRecord{}}
	s.persist()
	for _, n := range p.Nodes {
		role := nodeagent.RoleConsumer
		if slices.Contains(n.Roles, schema.RoleProvider) {
			role = nodeagent.RoleProvider
			if slices.Contains(n.Roles, schema.RoleConsumer) {
				role = nodeagent.RoleBoth
			}
		}
		st, err := nodeagent.NewState(n.NodeID, role, p.From.Name)
		if err != nil {
			t.Fatal(err)
		}
		s.agents[n.NodeID] = st
	}
	s.take(out)
	return s
}

// step folds one input and checks the invariants on what came out.
func (s *sim) step(in Input) {
	s.t.Helper()
	before := s.r.Phase
	var replica func(Output)
	if s.failover {
		replica = s.checkFailover(in)
	}
	out := Step(&s.r, in)
	if replica != nil {
		replica(out)
	}
	s.persist()
	if in, ok := in.(RequestIn); ok && in.Kind == schema.RequestFinalize {
		s.finalizeReq = true
	}
	for _, c := range out.Commands {
		if c.Kind == schema.CommandUninstall {
			committed := false
			for _, d := range s.r.Decisions {
				committed = committed || d.Decision == schema.DecisionCommitted
			}
			if !committed || (s.r.Plan.Finalize == FinalizeManual && !s.finalizeReq) {
				s.t.Fatalf("uninstall of %s sent to %s before commit and finalize approval (phase %s→%s)", c.Interface, c.Node, before, s.r.Phase)
			}
		}
	}
	s.take(out)
}

func (s *sim) take(out Output) {
	s.t.Helper()
	for _, c := range out.Commands {
		intent := c.Node + "|" + string(c.Kind) + "|" + c.Interface + "|" + c.To
		if id, ok := s.ids[intent]; ok && id != c.ID {
			s.t.Fatalf("intent %s sent with ids %s and %s", intent, id, c.ID)
		}
		s.ids[intent] = c.ID
		s.cmdQ[c.Node] = append(s.cmdQ[c.Node], c)
		s.log = append(s.log, string(c.Kind)+":"+c.Node)
	}
}

// deliver hands the oldest command of node to its agent and queues the ack.
func (s *sim) deliver(node string) bool { return s.deliverAs(node, false) }

// deliverAs delivers the next command; with fail, the agent's effects fail
// (a registry down, a package server gone): it keeps its state and acks
// failed.
func (s *sim) deliverAs(node string, fail bool) bool {
	q := s.cmdQ[node]
	if len(q) == 0 {
		return false
	}
	c := q[0]
	s.cmdQ[node] = q[1:]
	st := s.agents[node]
	ac := nodeagent.Command{ID: c.ID, Kind: c.Kind, Interface: c.Interface, To: c.To}
	if c.Kind == schema.CommandInstall {
		ac.PackageURL, ac.Digest = s.r.Plan.To.Package.URL, s.r.Plan.To.Package.Digest
	}
	d := nodeagent.Decide(st, ac)
	if fail && len(d.Effects) > 0 {
		d = nodeagent.Decision{Next: st, Ack: nodeagent.Ack{CommandID: c.ID, Status: schema.AckFailed, Reason: nodeagent.ReasonEffectFailed}}
	}
	if err := d.Next.Validate(); err != nil {
		s.t.Fatalf("agent %s after %s: %v (no node may lose its working interface)", node, c.ID, err)
	}
	s.agents[node] = d.Next
	s.events = append(s.events, AckIn{Ack: schema.Ack{NodeID: node, CommandID: c.ID, RolloutID: s.r.ID, Epoch: 1, Outcome: d.Ack.Status, Reason: d.Ack.Reason}})
	return true
}

// health queues what each agent would report of the new interface.
func (s *sim) health(node string) {
	st := s.agents[node]
	status := schema.HealthUnknown
	switch {
	case st.Phase(s.r.Plan.To.Name) == schema.StateActive && s.newHealthy:
		status = schema.HealthPassing
	case st.Phase(s.r.Plan.To.Name) == schema.StateActive:
		status = schema.HealthCritical
	}
	s.events = append(s.events, HealthIn{Health: schema.Health{NodeID: node, Interfaces: []schema.InterfaceHealth{{Name: s.r.Plan.To.Name, State: st.Phase(s.r.Plan.To.Name), Status: status}}}})
}

func (s *sim) registry() RegistryIn {
	return RegistryIn{Report: RegistryReport{At: s.now, Reachable: true, Healthy: s.newHealthy, BridgeRunning: true, BridgeConverged: true, Parity: s.parity,
		Unowned: s.unowned, UnownedDetail: unownedDetail(s.unowned)}}
}

func unownedDetail(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("orders: java-%d", n)
}

// stamp sets an input's time to the sim's clock.
func (s *sim) stamp(in Input) Input {
	switch in := in.(type) {
	case AckIn:
		in.Now = s.now
		return in
	case HealthIn:
		in.Now, in.Health.ObservedAt = s.now, s.now
		return in
	case RegistryIn:
		in.Now, in.Report.At = s.now, s.now
		return in
	case RequestIn:
		in.Now = s.now
		return in
	case HelloIn:
		in.Now = s.now
		return in
	}
	return Tick{Now: s.now}
}

// round delivers everything in order, reports health and the registry,
// and ticks the clock by d.
func (s *sim) round(d time.Duration) {
	s.t.Helper()
	for _, n := range s.r.Nodes {
		for s.deliver(n.ID) {
		}
	}
	for _, n := range s.r.Nodes {
		s.health(n.ID)
	}
	s.events = append(s.events, s.registry())
	evs := s.events
	s.events = nil
	for _, e := range evs {
		s.step(s.stamp(e))
	}
	s.now = s.now.Add(d)
	s.step(Tick{Now: s.now})
}

func (s *sim) runUntil(t tb, done func() bool, limit int) {
	t.Helper()
	for i := 0; i < limit; i++ {
		if done() {
			return
		}
		s.round(time.Second)
	}
	t.Fatalf("not done after %d rounds: phase %s wave %d held=%v\n%s", limit, s.r.Phase, s.r.Wave, s.r.Held, s.decisions())
}

func (s *sim) decisions() string {
	out := ""
	for _, d := range s.r.Decisions {
		out += fmt.Sprintf("  %s %s %s %v\n", d.Decision, d.Check, d.Detail, d.Nodes)
	}
	return out
}

func (s *sim) primaries() map[string]string {
	m := map[string]string{}
	for id, st := range s.agents {
		m[id] = st.Primary
	}
	return m
}

// persist writes what the rollout marked dirty into the sim's model of the
// state topic — each record encoded and decoded through its JSON Schema, as
// the runtime writes and a new leader replays it — and checks that the
// store then holds exactly the rollout's records: a change Step made without
// marking it dirty would be lost at failover, and fails here.
func (s *sim) persist() {
	s.t.Helper()
	d := s.r.TakeDirty()
	if d.Head {
		s.head = *roundTrip(s.t, &s.r.RolloutRecord)
	}
	for _, i := range d.Nodes {
		rec := s.r.NodeRecord(i)
		s.nodes[i] = *roundTrip(s.t, &rec)
	}
	if !s.failover {
		return
	}
	head := s.r.RolloutRecord
	head.Now = s.head.Now // Now alone does not dirty the head: every input moves it again
	if a, b := mustJSON(s.t, &s.head), mustJSON(s.t, &head); a != b {
		s.t.Fatalf("the head changed without being marked dirty:\nstored %s\nleader %s", a, b)
	}
	for i := range s.r.Nodes {
		if a, b := mustJSON(s.t, s.nodes[i]), mustJSON(s.t, s.r.NodeRecord(i)); a != b {
			s.t.Fatalf("node %d changed without being marked dirty:\nstored %s\nleader %s", i, a, b)
		}
	}
}

func roundTrip[T schema.Message](t tb, m T) T {
	t.Helper()
	body, err := schema.Encode(m)
	if err != nil {
		t.Fatalf("encode %s: %v", m.MessageType(), err)
	}
	d, err := schema.Decode(m.MessageType(), body)
	if err != nil {
		t.Fatalf("%s fails its schema: %v\n%s", m.MessageType(), err, body)
	}
	return d.(T)
}

// checkFailover is called before a step; the function it returns, after.
// It checks Step's contract and the state records': Step changes the
// rollout it is given in place and nothing else (a Clone taken before is
// untouched), and a replica that starts from the persisted records — with
// the health the leader heard, which is soft state a new leader hears again
// — takes the same step to the same records with the same output.
func (s *sim) checkFailover(in Input) func(Output) {
	s.t.Helper()
	prev := s.r.Clone()
	prevJSON := mustJSON(s.t, &prev)
	nodes := make([]schema.NodeRecord, 0, len(s.nodes))
	for _, n := range s.nodes {
		if n.Pending != nil { // the replica must not write into the store
			p := *n.Pending
			n.Pending = &p
		}
		nodes = append(nodes, n)
	}
	replica, err := FromRecords(s.head, nodes)
	if err != nil {
		s.t.Fatalf("the persisted records are no rollout: %v", err)
	}
	for i := range replica.Nodes {
		replica.Nodes[i].Health, replica.Nodes[i].HealthDetail, replica.Nodes[i].HealthAt = s.r.Nodes[i].Health, s.r.Nodes[i].HealthDetail, s.r.Nodes[i].HealthAt
	}
	replica.Now = s.r.Now
	return func(out Output) {
		s.t.Helper()
		if got := mustJSON(s.t, &prev); got != prevJSON {
			s.t.Fatalf("Step changed a Clone taken before it:\nbefore %s\nafter  %s", prevJSON, got)
		}
		rout := Step(&replica, in)
		if a, b := mustJSON(s.t, &replica), mustJSON(s.t, &s.r); a != b {
			s.t.Fatalf("a replica from the records stepped elsewhere:\nreplica %s\nleader  %s", a, b)
		}
		if a, b := mustJSON(s.t, rout), mustJSON(s.t, out); a != b {
			s.t.Fatalf("a replica from the records decided otherwise:\nreplica %s\nleader  %s", a, b)
		}
	}
}

func mustJSON(t tb, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
