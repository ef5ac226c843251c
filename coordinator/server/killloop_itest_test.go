package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// The kill loops: a six-node rollout (three providers, three consumers,
// four waves with a soak each) on the real servers, whose leading
// `regshift coordinator` process is killed with SIGKILL at ten moments
// drawn from a seeded source — during a wave, within a soak, right after a
// replica claimed the lead, and (one replica) again before the restarted
// process even led. Nothing is wrong with the fleet or the registries, so
// the rollout must end finalized: a switch-back is a false verdict. And no
// agent may carry out a command twice.
//
// REGSHIFT_KILLLOOP_SEED replays a schedule (the moments are relative to
// the rollout's progress, so a replay hits the same stages, not the same
// instants).

const killLoopKills = 10

// TestKillLoopLeadingCoordinator: one coordinator process, killed and
// restarted ten times; each restart replays the state, claims the next
// epoch and goes on.
func TestKillLoopLeadingCoordinator(t *testing.T) {
	l := newKillLoop(t, "coord-k")
	l.run()
}

// TestKillLoopWithStandby: two coordinator processes (same topics, same
// signing key, different ids); whichever leads is killed ten times, the
// other takes over, and the killed one is started again as the standby.
func TestKillLoopWithStandby(t *testing.T) {
	l := newKillLoop(t, "coord-a", "coord-b")
	l.run()
}

// killKind is what a kill waits for.
type killKind string

const (
	killAtStage killKind = "at-stage" // the rollout reached a stage; 0–1.5 s later
	killInSoak  killKind = "in-soak"  // a wave's soak began; a random point within it
	killClaimed killKind = "claimed"  // a replica claimed the lead; 0–300 ms later
	killUnled   killKind = "unled"    // 0.3–1.5 s after a restart, before it could lead (one replica only)
)

// killMoment is one kill of the schedule.
type killMoment struct {
	kind  killKind
	stage int // at-stage, in-soak: the stage (see stageOf) to wait for
	delay time.Duration
}

func (m killMoment) String() string {
	switch m.kind {
	case killAtStage, killInSoak:
		return fmt.Sprintf("%s %d +%s", m.kind, m.stage, m.delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s +%s", m.kind, m.delay.Round(time.Millisecond))
}

// stageOf orders the moments of a rollout of w waves: 0 preparing; 1+2k
// wave k moving, 2+2k wave k soaking; 2w+1 committed or finalizing; 2w+2
// ended.
func stageOf(r coordinator.Rollout) int {
	w := len(r.Waves)
	switch r.Phase {
	case schema.PhasePreparing:
		return 0
	case schema.PhaseRolling:
		if !r.SoakStarted.IsZero() {
			return 2 + 2*r.Wave
		}
		return 1 + 2*r.Wave
	case schema.PhaseCommitted, schema.PhaseFinalizing:
		return 2*w + 1
	}
	return 2*w + 2
}

// where says, for the log, where a rollout is.
func where(r coordinator.Rollout) string {
	switch {
	case r.ID == "":
		return "no view yet"
	case r.Phase == schema.PhaseRolling && r.Wave < len(r.Waves):
		s := fmt.Sprintf("rolling wave %d/%d (%s)", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Role)
		if !r.SoakStarted.IsZero() {
			return s + fmt.Sprintf(", soaking for %s", r.Now.Sub(r.SoakStarted).Round(100*time.Millisecond))
		}
		return s + ", moving"
	case r.Stage != "":
		return fmt.Sprintf("%s (%s)", r.Phase, r.Stage)
	}
	return string(r.Phase)
}

// killSchedule draws n kills for a plan of waves waves soaking soak: a
// fixed mix of kinds (some in a soak, some in quick succession) in a
// random order, at-stage and in-soak kills at distinct rising stages
// spread over the whole rollout. With a standby there is no "unled" kill:
// the loop kills whichever leads.
func killSchedule(rnd *rand.Rand, n, waves int, soak time.Duration, standby bool) []killMoment {
	kinds := []killKind{killInSoak, killInSoak, killInSoak, killClaimed, killClaimed, killUnled, killUnled}
	if standby {
		kinds[len(kinds)-1], kinds[len(kinds)-2] = killClaimed, killAtStage
	}
	for len(kinds) < n {
		kinds = append(kinds, killAtStage)
	}
	kinds = kinds[:n]
	rnd.Shuffle(n, func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	// The first kill needs a rollout under way: it cannot be a quick one.
	for i, k := range kinds {
		if k == killAtStage || k == killInSoak {
			kinds[0], kinds[i] = kinds[i], kinds[0]
			break
		}
	}
	// Distinct stages, rising, for the kills that wait for one: the
	// rollout moves on between them.
	staged := 0
	for _, k := range kinds {
		if k == killAtStage || k == killInSoak {
			staged++
		}
	}
	stages := rnd.Perm(2*waves + 1)[:staged] // preparing .. the last wave's soak
	slices.Sort(stages)
	out := make([]killMoment, n)
	prev := 0
	for i, k := range kinds {
		m := killMoment{kind: k}
		if k == killAtStage || k == killInSoak {
			m.stage, stages = max(prev, stages[0]), stages[1:] // an in-soak kill may have moved prev up
			prev = m.stage
		}
		switch k {
		case killAtStage:
			m.delay = upTo(rnd, 1500*time.Millisecond)
		case killInSoak:
			m.stage = max(2, m.stage+m.stage%2) // the soak of this stage's wave
			prev = max(prev, m.stage)
			m.delay = upTo(rnd, soak)
		case killClaimed:
			m.delay = upTo(rnd, 300*time.Millisecond)
		case killUnled:
			m.delay = 300*time.Millisecond + upTo(rnd, 1200*time.Millisecond)
		}
		out[i] = m
	}
	return out
}

// upTo draws a duration in [0, d).
func upTo(rnd *rand.Rand, d time.Duration) time.Duration { return time.Duration(rnd.Int64N(int64(d))) }

// killLoopRand is the schedule's source: REGSHIFT_KILLLOOP_SEED, or a new
// seed, logged either way.
func killLoopRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("REGSHIFT_KILLLOOP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("REGSHIFT_KILLLOOP_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill schedule seed %d (REGSHIFT_KILLLOOP_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// replica is one `regshift coordinator` process of the loop.
type replica struct {
	id string
	p  *coordProcess
}

// api is the running process's API address, or "" before it logged one.
func (r *replica) api() string {
	if r.p.cmd == nil {
		return ""
	}
	m := listeningRE.FindStringSubmatch(r.p.out.String()[r.p.from:])
	if m == nil {
		return ""
	}
	return "http://" + m[1]
}

// health is the replica's /healthz (zero when it does not answer).
func (r *replica) health() server.Health {
	var h server.Health
	api := r.api()
	if api == "" {
		return h
	}
	resp, err := http.Get(api + "/healthz")
	if err != nil {
		return h
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h
}

// killLoop is one rollout and its coordinator replicas.
type killLoop struct {
	t        *testing.T
	env      *itest.Env
	rnd      *rand.Rand
	agents   map[string]*itest.Agent
	replicas []*replica
	soak     time.Duration
	started  time.Time

	last  coordinator.Rollout // the latest view a leader served
	epoch uint64              // the highest epoch a leader reported
	kills []string            // what each kill hit
}

// newKillLoop starts the fleet and one coordinator process per id, and
// creates the rollout once one of them leads.
func newKillLoop(t *testing.T, ids ...string) *killLoop {
	if testing.Short() {
		t.Skip("ten coordinator kills over a whole rollout: not in -short")
	}
	env := itest.New(t)
	l := &killLoop{t: t, env: env, rnd: killLoopRand(t), soak: 3 * time.Second}
	service := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	roles := map[string]string{}
	l.agents = map[string]*itest.Agent{}
	for _, n := range []string{"p1", "p2", "p3", "c1", "c2", "c3"} {
		spec := itest.Provider(n, service)
		roles[n] = schema.RoleProvider
		if n[0] == 'c' {
			spec, roles[n] = itest.Consumer(n, service), schema.RoleConsumer
		}
		l.agents[n] = env.StartAgent(t, spec)
	}
	awaitProviders(t, env, service, l.agents["p1"], l.agents["p2"], l.agents["p3"])
	for _, id := range ids {
		file := filepath.Join(env.Dir, id+".yaml")
		cfg := fmt.Sprintf("id: %s\nbrokers: [%s]\ntopicPrefix: %s\nsigningKey: %s\nacceptUnsigned: true\nnodeKeysDir: %s\nlisten: 127.0.0.1:0\ntick: 200ms\nregistryEvery: 500ms\ncommandPartitions: 4\n",
			id, env.Brokers[0], env.Prefix, filepath.Join(env.KeysDir, "coordinator-itest.key"), env.NodeKeysDir)
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &replica{id: id, p: &coordProcess{file: file}}
		r.p.start(t)
		t.Cleanup(func() {
			r.p.signal(syscall.SIGTERM)
			if t.Failed() {
				t.Logf("%s output (every run):\n%s", r.id, r.p.out.String())
			}
		})
		l.replicas = append(l.replicas, r)
	}
	itest.Eventually(t, time.Minute, "a replica leads", func() error {
		if l.leader() == nil {
			return fmt.Errorf("no replica leads")
		}
		return nil
	})
	pl := plan(env, url, digest, roles)
	pl.Gates.SoakSeconds = int(l.soak / time.Second)
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"), Plan: pl})
	l.started = time.Now()
	return l
}

// leader returns the replica that says it leads, and notes its view of
// the rollout; nil when none does.
func (l *killLoop) leader() *replica {
	for _, r := range l.replicas {
		h := r.health()
		if !h.Leader {
			continue
		}
		l.epoch = max(l.epoch, h.Epoch)
		if ro, err := (&coord{api: r.api()}).rollout(l.env.RolloutID); err == nil {
			l.last = ro
			l.check()
		}
		return r
	}
	return nil
}

// check fails the test at once on a false verdict: nothing in this test
// gives a reason to switch back.
func (l *killLoop) check() {
	r := l.last
	bad := r.Phase == schema.PhaseSwitchingBack || r.Phase == schema.PhaseSwitchedBack || r.Phase == schema.PhaseFailed
	for _, d := range r.Decisions {
		bad = bad || d.Decision == schema.DecisionSwitchBack
	}
	if bad {
		l.t.Fatalf("FALSE VERDICT: the rollout is %s though nothing failed\nkills:\n%s\ndecisions:\n%s",
			r.Phase, strings.Join(l.kills, "\n"), decisionLog(r))
	}
}

// decisionLog prints a rollout's decisions with their inputs.
func decisionLog(r coordinator.Rollout) string {
	var b strings.Builder
	for _, d := range r.Decisions {
		fmt.Fprintf(&b, "  %s %s", d.At.Format("15:04:05.000"), d.Decision)
		if d.Check != "" {
			fmt.Fprintf(&b, " [%s", d.Check)
			if d.Observed != nil {
				fmt.Fprintf(&b, " observed %.3f", *d.Observed)
			}
			if d.Threshold != nil {
				fmt.Fprintf(&b, " threshold %.3f", *d.Threshold)
			}
			b.WriteString("]")
		}
		if len(d.Nodes) > 0 {
			fmt.Fprintf(&b, " nodes %v", d.Nodes)
		}
		if d.Repeated > 0 {
			fmt.Fprintf(&b, " (repeated %d)", d.Repeated)
		}
		fmt.Fprintf(&b, ": %s\n", d.Detail)
	}
	return b.String()
}

// await polls until cond holds of the leader (nil: none leads), failing
// after within.
func (l *killLoop) await(within time.Duration, what string, cond func(*replica) bool) *replica {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if r := l.leader(); cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: not within %s; last seen %s (epoch %d)\nkills:\n%s\ndecisions:\n%s",
				what, within, where(l.last), l.epoch, strings.Join(l.kills, "\n"), decisionLog(l.last))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run carries out the schedule, then waits for the rollout to finalize
// and checks that every agent carried out each command once.
func (l *killLoop) run() {
	t := l.t
	standby := len(l.replicas) > 1
	schedule := killSchedule(l.rnd, killLoopKills, 4, l.soak, standby)
	var desc []string
	for _, m := range schedule {
		desc = append(desc, m.String())
	}
	t.Logf("kill schedule: %s", strings.Join(desc, ", "))
	var restarted *replica // the replica started last, for an unled kill
	for i, m := range schedule {
		victim := l.moment(m, restarted)
		if victim == nil {
			continue
		}
		l.kill(i, m, victim)
		restarted = victim
		if standby && (i+1 == len(schedule) || schedule[i+1].kind != killClaimed) {
			l.takeover(victim)
		}
		victim.p.start(t)
	}
	l.await(3*time.Minute, "the rollout finalizes", func(r *replica) bool {
		return r != nil && l.last.Phase == schema.PhaseFinalized
	})
	t.Logf("finalized at epoch %d, %s after the request, after %d kills:\n%s\ndecisions:\n%s",
		l.last.Epoch, time.Since(l.started).Round(time.Second), len(l.kills), strings.Join(l.kills, "\n"), decisionLog(l.last))
	for id, ag := range l.agents {
		for _, kind := range []string{"install", "activate", "uninstall"} {
			if n := appliedCount(t, ag, kind); n != 1 {
				t.Errorf("%s carried out %s %d times", id, kind, n)
			}
		}
	}
}

// moment waits for the schedule's next moment and returns the replica to
// kill then.
func (l *killLoop) moment(m killMoment, restarted *replica) *replica {
	switch m.kind {
	case killUnled:
		time.Sleep(m.delay)
		return restarted
	case killClaimed:
		epoch := l.epoch
		l.await(time.Minute, "a new claim", func(r *replica) bool { return r != nil && l.epoch > epoch })
	default:
		l.await(2*time.Minute, fmt.Sprintf("stage %d", m.stage), func(r *replica) bool {
			return r != nil && l.last.ID != "" && stageOf(l.last) >= m.stage
		})
	}
	time.Sleep(m.delay)
	return l.await(time.Minute, "a leader to kill", func(r *replica) bool { return r != nil })
}

// kill kills the replica with SIGKILL and logs where the rollout was.
func (l *killLoop) kill(i int, m killMoment, r *replica) {
	h := r.health()
	if h.Leader {
		l.leader() // the freshest view
	}
	state := "had not led yet"
	if h.Leader {
		state = fmt.Sprintf("leading epoch %d", h.Epoch)
	} else if strings.Contains(r.p.out.String()[r.p.from:], `"msg":"leading"`) {
		state = "not leading now, led earlier (between generations)"
	}
	pid := r.p.cmd.Process.Pid
	at := time.Now()
	r.p.signal(syscall.SIGKILL)
	line := fmt.Sprintf("  %s kill %d/%d (%s): %s pid %d, %s; rollout %s (%s after the request)",
		at.Format("15:04:05.000"), i+1, killLoopKills, m, r.id, pid, state, where(l.last), at.Sub(l.started).Round(100*time.Millisecond))
	l.kills = append(l.kills, line)
	l.t.Log(line)
	l.check()
}

// takeover waits until a replica other than the killed one leads.
func (l *killLoop) takeover(killed *replica) {
	from := time.Now()
	r := l.await(time.Minute, "the standby takes over", func(r *replica) bool { return r != nil })
	if r == killed {
		l.t.Fatalf("%s leads after it was killed", r.id)
	}
	l.t.Logf("  %s took over at epoch %d after %s", r.id, l.epoch, time.Since(from).Round(100*time.Millisecond))
}
