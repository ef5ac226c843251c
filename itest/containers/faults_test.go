//go:build containers

package containers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// inWave accepts the rollout once it is rolling in wave w (0-based) or later.
func inWave(w int) func(coordinator.Rollout) error {
	return func(r coordinator.Rollout) error {
		if r.Phase != schema.PhaseRolling || r.Wave < w {
			return fmt.Errorf("phase %s wave %d", r.Phase, r.Wave+1)
		}
		return nil
	}
}

// TestCoordinatorKilledMidWave kills the coordinator container in the middle
// of the second wave and starts it again: it replays its state from Kafka,
// claims a new epoch and finalizes.
func TestCoordinatorKilledMidWave(t *testing.T) {
	f := startFleet(t)
	f.create(t, "ro-coord-kill", nil)
	f.co.AwaitRollout(t, "ro-coord-kill", 2*time.Minute, "wave 2", inWave(1))
	f.co.Kill(t)
	f.co.Start(t)

	r := f.co.AwaitPhase(t, "ro-coord-kill", schema.PhaseFinalized, 3*time.Minute)
	if r.Epoch < 2 {
		t.Fatalf("the restarted coordinator finished with epoch %d, want a new claim", r.Epoch)
	}
	f.awaitInstances(t, "consul", f.providers)
	f.awaitInstances(t, "zookeeper", nil)
	f.awaitResolvedVia(t, "consul")
}

// TestSwitchBackOnConsulFailure kills the Consul container during the
// consumer canary's soak: the gate fails and every touched node switches
// back to ZooKeeper.
func TestSwitchBackOnConsulFailure(t *testing.T) {
	f := startFleet(t)
	f.create(t, "ro-consul-dies", func(p *schema.Plan) { p.Gates.SoakSeconds = 5 })
	f.co.AwaitRollout(t, "ro-consul-dies", 2*time.Minute, "consumer canary soaking", func(r coordinator.Rollout) error {
		if err := inWave(0)(r); err != nil {
			return err
		}
		if r.Waves[r.Wave].Role != schema.RoleConsumer || r.SoakStarted.IsZero() {
			return fmt.Errorf("wave %d (%s), soak started %v", r.Wave+1, r.Waves[r.Wave].Role, r.SoakStarted)
		}
		return nil
	})
	f.s.Consul.Kill(t)

	r := f.co.AwaitPhase(t, "ro-consul-dies", schema.PhaseSwitchedBack, 3*time.Minute)
	switched := false
	for _, d := range r.Decisions {
		switched = switched || d.Decision == schema.DecisionSwitchBack
	}
	if !switched {
		t.Fatalf("switched back without a switch-back decision: %+v", r.Decisions)
	}
	f.awaitInstances(t, "zookeeper", f.providers)
	f.awaitResolvedVia(t, "zookeeper")
}

// TestKafkaRestartedMidRollout restarts the Kafka container in the middle of
// the second wave: coordinator and agents reconnect and the rollout finalizes.
func TestKafkaRestartedMidRollout(t *testing.T) {
	f := startFleet(t)
	f.create(t, "ro-kafka-restart", func(p *schema.Plan) { p.Gates.AckTimeoutSeconds = 90 })
	f.co.AwaitRollout(t, "ro-kafka-restart", 2*time.Minute, "wave 2", inWave(1))
	f.s.Kafka.Restart(t)

	f.co.AwaitPhase(t, "ro-kafka-restart", schema.PhaseFinalized, 4*time.Minute)
	f.awaitInstances(t, "consul", f.providers)
	f.awaitInstances(t, "zookeeper", nil)
	f.awaitResolvedVia(t, "consul")
}
