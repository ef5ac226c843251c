package coordinator

import (
	"container/heap"
	"slices"
	"strings"

	"github.com/regshift/regshift/schema"
)

// build derives the lookups and counters from the records, once: O(nodes).
// Every later change keeps them in step through update, so an ack or a
// health report costs O(log n) at most.
func (r *Rollout) build() {
	if r.d.built {
		return
	}
	r.d.built = true
	r.d.index = make(map[string]int, len(r.Nodes))
	r.d.waves = make([][]int, len(r.Waves))
	for i := range r.Nodes {
		r.d.index[r.Nodes[i].ID] = i
		if w := r.Nodes[i].Wave; w >= 0 && w < len(r.d.waves) {
			r.d.waves[w] = append(r.d.waves[w], i)
		}
	}
	r.d.pos = make([]int, len(r.Nodes))
	for _, wave := range r.d.waves {
		// A wave moves in node id order, as PlanWaves listed it.
		slices.SortFunc(wave, func(a, b int) int { return strings.Compare(r.Nodes[a].ID, r.Nodes[b].ID) })
		for p, i := range wave {
			r.d.pos[i] = p
		}
	}
	r.d.queued = make([]bool, len(r.Nodes))
	r.d.judged = make([]bool, len(r.Nodes))
	r.d.ready = readyQueue{pos: r.d.pos}
	r.d.failed = map[int]bool{}
	if r.d.dirty == nil {
		r.d.dirty = map[int]bool{}
	}
	r.recount()
}

// contrib is what one node adds to the counters of the current wave (while
// rolling) or the current stage (while switching back or finalizing).
type contrib struct {
	pending, unsettled, failed, ready, stageOpen bool
}

func (r *Rollout) contrib(i int) contrib {
	n := &r.Nodes[i]
	var c contrib
	switch r.Phase {
	case schema.PhaseRolling:
		if n.Wave != r.d.wave {
			return c
		}
		c.pending = n.Pending != nil
		c.unsettled = n.Pending != nil || (n.Failure == "" && n.Reached != schema.ReachedActive)
		c.failed = n.Failure != "" || (r.d.judged[i] && criticalSinceActive(n))
		c.ready = n.Pending == nil && n.Failure == "" && n.Reached != schema.ReachedActive
	case schema.PhaseSwitchingBack, schema.PhaseFinalizing:
		kind, step := r.stagedKind()
		c.stageOpen = r.inStage(n, kind) && n.Reached != step
	}
	return c
}

// criticalSinceActive: the node reported critical on the new interface
// since it activated.
func criticalSinceActive(n *Node) bool {
	return n.Reached == schema.ReachedActive && n.Health == schema.HealthCritical && !n.HealthAt.Before(n.ActiveAt)
}

// graceOver: node i is active and its activation grace has passed, so its
// critical reports on the new interface count against it.
func (r *Rollout) graceOver(i int) bool {
	n := &r.Nodes[i]
	return n.Reached == schema.ReachedActive && !r.Now.Before(n.ActiveAt.Add(r.Plan.Gates.ActivationGrace()))
}

// judgeExpired judges the current wave's nodes whose activation grace
// ended since the last pass: O(wave), on the level-triggered pass, so a
// node that stays critical fails at its grace's end plus one tick without
// a report costing more than O(log n).
func (r *Rollout) judgeExpired() {
	for _, i := range r.d.waves[r.d.wave] {
		if !r.d.judged[i] && r.graceOver(i) {
			before := r.contrib(i)
			r.d.judged[i] = true
			r.apply(i, before, r.contrib(i))
		}
	}
}

// recount rebuilds the counters of the current wave or stage: O(wave) or
// O(nodes), on a wave or stage change and at build.
func (r *Rollout) recount() {
	for _, i := range r.d.ready.items {
		r.d.queued[i] = false
	}
	r.d.ready.items = r.d.ready.items[:0]
	r.d.inflight, r.d.unsettled, r.d.stageRemaining = 0, 0, 0
	clear(r.d.failed)
	r.d.wave, r.d.stage = -1, ""
	switch r.Phase {
	case schema.PhaseRolling:
		if r.Wave < 0 || r.Wave >= len(r.d.waves) {
			return
		}
		r.d.wave = r.Wave
		for _, i := range r.d.waves[r.Wave] {
			r.d.judged[i] = r.graceOver(i)
			r.apply(i, contrib{}, r.contrib(i))
		}
	case schema.PhaseSwitchingBack, schema.PhaseFinalizing:
		r.d.stage = r.Stage
		for i := range r.Nodes {
			r.apply(i, contrib{}, r.contrib(i))
		}
	}
}

// counted reports whether the counters are for the rollout's current wave
// or stage; recount when they are not.
func (r *Rollout) counted() {
	r.build()
	switch r.Phase {
	case schema.PhaseRolling:
		if r.d.wave != r.Wave {
			r.recount()
		}
	case schema.PhaseSwitchingBack, schema.PhaseFinalizing:
		if r.d.stage != r.Stage || r.d.wave != -1 {
			r.recount()
		}
	default:
		if r.d.wave != -1 || r.d.stage != "" {
			r.recount()
		}
	}
}

// update changes node i's record through f, keeps the counters in step and
// marks the record dirty.
func (r *Rollout) update(i int, f func(n *Node)) {
	r.counted()
	before := r.contrib(i)
	f(&r.Nodes[i])
	r.d.dirty[i] = true
	r.d.judged[i] = r.graceOver(i)
	r.apply(i, before, r.contrib(i))
}

// updateHealth changes node i's soft health: the counters follow, no
// record is written.
func (r *Rollout) updateHealth(i int, status schema.HealthStatus, detail string) {
	r.counted()
	before := r.contrib(i)
	n := &r.Nodes[i]
	n.Health, n.HealthDetail, n.HealthAt = status, schema.Truncate(detail, maxReason), r.Now
	r.d.judged[i] = r.graceOver(i)
	r.apply(i, before, r.contrib(i))
}

func (r *Rollout) apply(i int, before, after contrib) {
	add := func(v *int, was, is bool) {
		if was {
			*v--
		}
		if is {
			*v++
		}
	}
	add(&r.d.inflight, before.pending, after.pending)
	add(&r.d.unsettled, before.unsettled, after.unsettled)
	add(&r.d.stageRemaining, before.stageOpen, after.stageOpen)
	if after.failed {
		r.d.failed[i] = true
	} else if before.failed {
		delete(r.d.failed, i)
	}
	if after.ready && !r.d.queued[i] {
		r.d.queued[i] = true
		heap.Push(&r.d.ready, i)
	}
}

// failedIDs lists the current wave's failed nodes in wave order.
func (r *Rollout) failedIDs() []string {
	idx := make([]int, 0, len(r.d.failed))
	for i := range r.d.failed {
		idx = append(idx, i)
	}
	slices.SortFunc(idx, func(a, b int) int { return r.d.pos[a] - r.d.pos[b] })
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = r.Nodes[i].ID
	}
	return ids
}

// readyQueue holds nodes of the current wave ready for their next command,
// the earliest in the wave first (a min-heap on the position in the wave).
type readyQueue struct {
	items []int
	pos   []int
}

func (q readyQueue) Len() int           { return len(q.items) }
func (q readyQueue) Less(a, b int) bool { return q.pos[q.items[a]] < q.pos[q.items[b]] }
func (q readyQueue) Swap(a, b int)      { q.items[a], q.items[b] = q.items[b], q.items[a] }
func (q *readyQueue) Push(x any)        { q.items = append(q.items, x.(int)) }
func (q *readyQueue) Pop() any {
	n := len(q.items) - 1
	x := q.items[n]
	q.items = q.items[:n]
	return x
}

// WaveNodes lists wave w's nodes in the order they move (none when w is
// not a wave).
func (r *Rollout) WaveNodes(w int) []*Node {
	r.build()
	if w < 0 || w >= len(r.d.waves) {
		return nil
	}
	out := make([]*Node, len(r.d.waves[w]))
	for k, i := range r.d.waves[w] {
		out[k] = &r.Nodes[i]
	}
	return out
}
