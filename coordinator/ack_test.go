package coordinator

import (
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

// rollingAtEpoch is the test plan's rollout led at epoch, rolling, with
// the canary's install (p1) pending.
func rollingAtEpoch(t *testing.T, epoch uint64) (Rollout, Command, time.Time) {
	t.Helper()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r, _, err := NewRollout("ro-1", testPlan(t), epoch, now)
	if err != nil {
		t.Fatal(err)
	}
	out := Step(&r, RegistryIn{Now: now, Report: RegistryReport{At: now, Reachable: true, Healthy: true, BridgeRunning: true, BridgeConverged: true, Parity: 1}})
	if r.Phase != schema.PhaseRolling || len(out.Commands) != 1 || out.Commands[0].ID != "ro-1:p1:install" {
		t.Fatalf("phase %s, commands %+v", r.Phase, out.Commands)
	}
	return r, out.Commands[0], now
}

// TestAckMustMatchRolloutAndEpoch: an ack counts only for the rollout it
// names and only with an epoch this rollout's leaders sent; one that does
// not is refused with its reason and changes nothing — a `rejected` one
// does not fail the node, so it cannot switch the rollout back.
func TestAckMustMatchRolloutAndEpoch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rollout string
		epoch   uint64
		want    Refusal
	}{
		{"another rollout", "ro-2", 2, RefusedOtherRollout},
		{"no rollout", "", 2, RefusedOtherRollout},
		{"an epoch above the leader's", "ro-1", 3, RefusedFutureEpoch},
		{"the largest epoch", "ro-1", 1<<53 - 1, RefusedFutureEpoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, cmd, now := rollingAtEpoch(t, 2)
			before := r.Clone()
			out := Step(&r, AckIn{Now: now.Add(time.Second), Ack: schema.Ack{NodeID: "p1", CommandID: cmd.ID, RolloutID: tc.rollout,
				Epoch: tc.epoch, Outcome: schema.AckRejected, Reason: "bad-signature"}})
			n := r.Node("p1")
			if r.Phase != schema.PhaseRolling || n.Pending == nil || n.Pending.Command.ID != cmd.ID || n.Failure != "" ||
				len(r.Decisions) != len(before.Decisions) || len(out.Commands) != 0 {
				t.Fatalf("a refused ack moved the rollout: phase %s, p1 %+v, decisions %s", r.Phase, n.NodeRecord, decisionNames(r))
			}
			if len(out.Refused) != 1 || out.Refused[0].Why != tc.want || out.Refused[0].Node != "p1" || out.Refused[0].Command != cmd.ID {
				t.Fatalf("refused %+v, want one %s", out.Refused, tc.want)
			}
		})
	}
	t.Run("the same ack, matching, switches back", func(t *testing.T) {
		r, cmd, now := rollingAtEpoch(t, 2)
		out := Step(&r, AckIn{Now: now.Add(time.Second), Ack: schema.Ack{NodeID: "p1", CommandID: cmd.ID, RolloutID: "ro-1",
			Epoch: 2, Outcome: schema.AckRejected, Reason: "bad-signature"}})
		if len(out.Refused) != 0 || r.Phase != schema.PhaseSwitchingBack {
			t.Fatalf("refused %+v, phase %s: the control case proves nothing", out.Refused, r.Phase)
		}
	})
}

// TestAckOfAnEarlierEpochsSendCounts: a new leader (epoch 3) re-sends the
// pending install with its id; the agent's answer to the send of the
// earlier leader (epoch 2) still counts.
func TestAckOfAnEarlierEpochsSendCounts(t *testing.T) {
	for _, epoch := range []uint64{1, 2, 3} {
		r, cmd, now := rollingAtEpoch(t, 2)
		r.Epoch = 3 // what a new leader does to every rollout it replays
		out := Step(&r, AckIn{Now: now.Add(time.Second), Ack: schema.Ack{NodeID: "p1", CommandID: cmd.ID, RolloutID: "ro-1",
			Epoch: epoch, Outcome: schema.AckDone}})
		if n := r.Node("p1"); len(out.Refused) != 0 || n.Reached != schema.ReachedInstalled {
			t.Fatalf("ack of epoch %d under leader epoch 3: refused %+v, p1 %+v", epoch, out.Refused, n.NodeRecord)
		}
	}
}
