package server_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// TestPanicInOneStepHoldsThatRollout plants a step that panics for one of
// two rollouts once it rolls. That rollout is held, with the panic in a
// persisted decision, and nothing but a request is folded into it; the
// other commits meanwhile; the replica keeps the lead. With the fault
// gone, a resume request lets the held rollout go on to commit.
func TestPanicInOneStepHoldsThatRollout(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	var planted atomic.Bool
	planted.Store(true)
	e.agent(ctx, t, "a1")
	e.agent(ctx, t, "b1")
	s := newServer(t, e.cfg, e.open)
	s.PlantStep(func(r *coordinator.Rollout, in coordinator.Input) coordinator.Output {
		if r.ID == "ro-a" && r.Phase == schema.PhaseRolling && planted.Load() {
			panic("planted: ro-a cannot step")
		}
		return coordinator.Step(r, in)
	})
	api := serve(ctx, t, s)
	plan := planFor(t, "a1")
	plan.Gates.AckTimeoutSeconds = schema.PlanMinAckTimeoutSeconds // an ack dropped while held is asked for again soon after the resume
	createRollout(ctx, t, e.prod, e.topics, "ro-a", plan)
	createRollout(ctx, t, e.prod, e.topics, "ro-b", planFor(t, "b1"))

	await(t, "ro-a held, its panic persisted", func() error {
		rec, ok := persisted(ctx, t, e.brokers, e.topics.State, "ro-a")
		if !ok || !rec.Held || len(rec.Decisions) == 0 {
			return fmt.Errorf("ro-a persisted %v, held %v", ok, rec.Held)
		}
		d := rec.Decisions[len(rec.Decisions)-1]
		if d.Decision != schema.DecisionHeld || d.Check != schema.CheckStep || !strings.Contains(d.Detail, "planted: ro-a cannot step") {
			return fmt.Errorf("last decision %+v", d)
		}
		return nil
	})
	awaitPhase(t, api, "ro-b", schema.PhaseCommitted)
	// ro-b's soak took twenty ticks after ro-a was held, and acks came in:
	// none was folded into ro-a, so the panic that would repeat on each
	// happened once.
	var a coordinator.Rollout
	if err := getJSON(api+"/v1/rollouts/ro-a", &a); err != nil {
		t.Fatal(err)
	}
	if panics := metric(t, api, "regshift_coordinator_step_panics_total"); !a.Held || a.Phase != schema.PhaseRolling || panics != 1 {
		t.Fatalf("ro-a %s held %v after %v panics, want held and rolling after one", a.Phase, a.Held, panics)
	}
	if h := health(t, api); !h.Leader || h.Epoch != 1 {
		t.Errorf("healthz %+v, want the lead at epoch 1", h)
	}

	planted.Store(false)
	publishRequest(t, e, &schema.Resume{RequestHeader: schema.RequestHeader{RequestID: "resume-ro-a", RolloutID: "ro-a",
		RequestedBy: "alice", RequestedAt: time.Now().UTC()}})
	awaitPhase(t, api, "ro-a", schema.PhaseCommitted)
}

func awaitPhase(t *testing.T, api, id string, phase schema.RolloutPhase) {
	t.Helper()
	await(t, id+" "+string(phase), func() error {
		var r coordinator.Rollout
		if err := getJSON(api+"/v1/rollouts/"+id, &r); err != nil {
			return err
		}
		if r.Phase != phase {
			return fmt.Errorf("%s held %v", r.Phase, r.Held)
		}
		return nil
	})
}

// publishRequest publishes a request, unsigned.
func publishRequest(t *testing.T, e *stateEnv, m schema.Message) {
	t.Helper()
	e.plant(t, nil, m)
}
