package server

import (
	"maps"
	"slices"

	"github.com/regshift/regshift/coordinator"
)

// view is what the API serves: the rollouts as the owner last published
// them. A view and everything it points to is never changed after it is
// published, so readers need no lock; the owner builds the next one.
type view struct {
	ids      []string // sorted
	rollouts map[string]*rolloutView
	// The rollouts this leader quarantined on replay: every one by id, and
	// the first maxQuarantineListed in id order for the list.
	quarantined map[string]*Summary
	quarantine  []Summary
}

// rolloutView is one rollout's snapshot and its summary.
type rolloutView struct {
	rollout coordinator.Rollout // a deep copy (Clone): the owner's rollout moves on, this does not
	summary Summary
}

// publishView snapshots the rollouts changed since the last view and keeps
// the others' snapshots; the metrics' gauges follow the new view.
func (o *owner) publishView() {
	old := o.s.view.Load()
	next := &view{rollouts: make(map[string]*rolloutView, len(o.rollouts)), quarantined: o.quarantined, quarantine: o.quarantineListed}
	for id, r := range o.rollouts {
		if rv, ok := old.rollouts[id]; ok && !o.changed[id] {
			next.rollouts[id] = rv
			continue
		}
		c := r.Clone()
		next.rollouts[id] = &rolloutView{rollout: c, summary: summarize(&c)}
	}
	next.ids = slices.Sorted(maps.Keys(next.rollouts))
	o.s.view.Store(next)
	o.s.hub.poke()
	clear(o.changed)
	o.lastView = o.s.now()
	o.s.m.observe(next)
}
