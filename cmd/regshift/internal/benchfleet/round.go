package benchfleet

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// A burst is the commands of one kind the coordinator sends together:
// install and activate to the nodes of one wave (a node's activate follows
// its own install ack, so a wave's two bursts overlap), uninstall to every
// node of one role (consumers, then providers). Its round runs from the
// moment the coordinator stamped the first of its commands (the command
// record's ce_time, set as the owner encodes and signs it, just before
// publishing) to the moment it persisted the fold of the last ack (the
// ce_time of the first state record showing the last node past that step:
// the owner folds a batch of acks, then writes the dirty node records, then
// sends what follows). Both are the coordinator's own clock, read from the
// records it wrote, so neither the API's snapshot interval nor polling is
// in the figure.
type burstKey struct {
	kind  schema.CommandKind
	group int // the wave (install, activate); the stage, 0 consumers then 1 providers (uninstall)
}

type burst struct {
	key      burstKey
	name     string // "wave 4 (provider)", "stage consumer"
	nodes    int
	commands int       // command records of the burst the fleet carried out
	sent     time.Time // ce_time of the first command
	lastAck  time.Time // when the fleet queued the last ack
	folded   time.Time // ce_time of the state record showing the last node past the step
	done     int       // nodes seen past the step on the state topic
}

// took is the burst's round, 0 while it is not complete.
func (b *burst) took() time.Duration {
	if b.done < b.nodes || b.sent.IsZero() {
		return 0
	}
	return b.folded.Sub(b.sent)
}

// steps are the command kinds a healthy rollout sends, in the order of
// the progress they bring a node to (a state record's reached).
var steps = []struct {
	kind    schema.CommandKind
	reached schema.Progress
}{{schema.CommandInstall, schema.ReachedInstalled}, {schema.CommandActivate, schema.ReachedActive}, {schema.CommandUninstall, schema.ReachedUninstalled}}

// rounds follows every burst of a run: the fleet's readers report the
// commands they carry out, the state reader the node records the
// coordinator writes.
type rounds struct {
	mu      sync.Mutex
	wave    []int   // node index -> its wave
	stage   []int   // node index -> its uninstall stage
	reached []uint8 // node index -> steps seen on the state topic
	bursts  map[burstKey]*burst
}

func newRounds(p schema.Plan) *rounds {
	r := &rounds{wave: make([]int, len(p.Nodes)), stage: make([]int, len(p.Nodes)), reached: make([]uint8, len(p.Nodes)),
		bursts: map[burstKey]*burst{}}
	index := make(map[string]int, len(p.Nodes))
	for i, n := range p.Nodes {
		index[n.NodeID] = i
	}
	stages := [2]int{}
	for w, wave := range coordinator.PlanWaves(p) {
		stage := 0
		if wave.Role == schema.RoleProvider {
			stage = 1
		}
		for _, id := range wave.Nodes {
			r.wave[index[id]], r.stage[index[id]] = w, stage
		}
		for _, kind := range []schema.CommandKind{schema.CommandInstall, schema.CommandActivate} {
			k := burstKey{kind, w}
			r.bursts[k] = &burst{key: k, name: fmt.Sprintf("wave %d (%s)", w+1, wave.Role), nodes: len(wave.Nodes)}
		}
		stages[stage] += len(wave.Nodes)
	}
	for stage, role := range []string{schema.RoleConsumer, schema.RoleProvider} {
		k := burstKey{schema.CommandUninstall, stage}
		r.bursts[k] = &burst{key: k, name: "stage " + role + "s", nodes: stages[stage]}
	}
	return r
}

func (r *rounds) key(kind schema.CommandKind, node int) burstKey {
	if kind == schema.CommandUninstall {
		return burstKey{kind, r.stage[node]}
	}
	return burstKey{kind, r.wave[node]}
}

// command notes a command the fleet carried out and is about to ack (at
// acked); stamped is its record's ce_time.
func (r *rounds) command(kind schema.CommandKind, node int, stamped, acked time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bursts[r.key(kind, node)]
	if b == nil {
		return // a switch-back: not a healthy rollout's burst
	}
	b.commands++
	if b.sent.IsZero() || stamped.Before(b.sent) {
		b.sent = stamped
	}
	if acked.After(b.lastAck) {
		b.lastAck = acked
	}
}

// stateRecord notes a node record the coordinator wrote at stamped: the
// first one showing a node past a step is the fold of that step's ack.
func (r *rounds) stateRecord(value []byte, stamped time.Time) {
	var rec struct {
		Index   int             `json:"index"`
		Reached schema.Progress `json:"reached"`
	}
	if json.Unmarshal(value, &rec) != nil || rec.Index < 0 || rec.Index >= len(r.reached) {
		return
	}
	level := 0
	for i, s := range steps {
		if s.reached == rec.Reached {
			level = i + 1
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for ; int(r.reached[rec.Index]) < level; r.reached[rec.Index]++ {
		b := r.bursts[r.key(steps[r.reached[rec.Index]].kind, rec.Index)]
		b.done++
		if stamped.After(b.folded) {
			b.folded = stamped
		}
	}
}

// largest is each kind's largest complete burst (the slower of two the
// same size), in the order of steps.
func (r *rounds) largest() []burst {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []burst
	for _, s := range steps {
		var best *burst
		for _, b := range r.bursts {
			switch {
			case b.key.kind != s.kind || b.took() <= 0:
			case best == nil || b.nodes > best.nodes || b.nodes == best.nodes && b.took() > best.took():
				best = b
			}
		}
		if best != nil {
			out = append(out, *best)
		}
	}
	return out
}

// largestSizes are the node counts of each kind's largest burst as planned:
// the sizes the raw floor is measured at besides N.
func largestSizes(p schema.Plan) []int {
	r := newRounds(p)
	var sizes []int
	for _, s := range steps {
		n := 0
		for _, b := range r.bursts {
			if b.key.kind == s.kind {
				n = max(n, b.nodes)
			}
		}
		sizes = append(sizes, n)
	}
	return sizes
}
