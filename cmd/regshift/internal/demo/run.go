package demo

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/regshift/regshift/coordinator/server"

	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/client"
	"github.com/regshift/regshift/schema"
)

// startCoordinator runs a coordinator in this process and returns its API.
func (w *world) startCoordinator(ctx context.Context, keysDir string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	cfg := server.DefaultConfig()
	cfg.ID, cfg.Brokers, cfg.TopicPrefix = "demo-coordinator", w.o.Kafka, w.prefix
	cfg.SigningKey = filepath.Join(keysDir, "demo-coordinator.key")
	cfg.OperatorKeysDir = filepath.Join(w.dir, "operators")
	cfg.NodeKeysDir = filepath.Join(w.dir, "nodes")
	cfg.Listen = ln.Addr().String()
	cfg.PackagesDir = filepath.Join(w.dir, "packages")
	cfg.Tick, cfg.RegistryEvery, cfg.CommandPartitions = 250*time.Millisecond, 500*time.Millisecond, 4
	rt, err := server.New(cfg, server.Deps{Registry: prometheus.NewRegistry()}, w.o.Log)
	if err != nil {
		_ = ln.Close()
		return "", err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Serve(cctx, ln) }()
	w.stops = append(w.stops, func() { cancel(); <-done })
	api := "http://" + cfg.Listen
	w.say("console: %s/  (the coordinator's API and web console; to pause or resume from it, load the operator key %s)",
		api, filepath.Join(w.dir, "operators", "demo-operator"+events.PrivateKeyExt))
	if err := waitHTTP(ctx, api+"/healthz", func(b []byte) bool { return strings.Contains(string(b), `"leader": true`) }); err != nil {
		return "", fmt.Errorf("coordinator did not take the lead: %w", err)
	}
	w.say("coordinator leads (topics %s*, API %s, packages served at %s/packages/)", w.prefix, api, api)
	w.deleteTopicsOnStop()
	return api, nil
}

func (w *world) deleteTopicsOnStop() {
	t := events.NewTopics(w.prefix)
	w.stops = append([]func(){func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(w.o.Kafka...)}
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{t.Commands, t.Events, t.Requests, t.State, t.DLQ}})
	}}, w.stops...)
}

func waitHTTP(ctx context.Context, url string, ok func([]byte) bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			var b [4096]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if ok(b[:n]) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no answer in 60s (%v)", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startFleet starts an agent per host, a demo app on each provider and a
// caller on each consumer.
func (w *world) startFleet(ctx context.Context, keysDir string, from end) ([]*caller, map[string]string, error) {
	nodes := map[string]string{}
	var callers []*caller
	start := func(node string, role nodeagent.Role) (*client.Client, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		cfg := nodeagent.DefaultConfig()
		cfg.Node, cfg.Role, cfg.StateDir = node, role, filepath.Join(w.dir, "agents", node)
		cfg.Start = from.start()
		cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = w.o.Kafka, w.prefix
		cfg.Trust.KeysDir = keysDir
		cfg.Identity.SigningKey = filepath.Join(w.dir, "identity", node+events.PrivateKeyExt)
		cfg.API.Listen = ln.Addr().String()
		cfg.HealthInterval = 500 * time.Millisecond
		if role == nodeagent.RoleProvider {
			app, err := startProvider(node)
			if err != nil {
				return nil, err
			}
			w.stops = append(w.stops, app.stop)
			w.apps[node] = app
			cfg.Services = []nodeagent.Service{{Name: w.service, ID: node, Address: "127.0.0.1", Port: app.port,
				Check: nodeagent.Check{HTTP: app.healthURL(), Interval: time.Second, Timeout: 500 * time.Millisecond}}}
		} else {
			cfg.Consumes = []string{w.service}
		}
		a, err := nodeagent.NewAgent(cfg, nodeagent.Deps{Listener: ln}, w.o.Log)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		w.stops = append(w.stops, func() { cancel(); <-done })
		c, err := client.New(cfg.API.Listen)
		if err != nil {
			return nil, err
		}
		return c, waitHTTP(ctx, "http://"+cfg.API.Listen+"/healthz", func([]byte) bool { return true })
	}
	for i := 1; i <= w.o.Providers; i++ {
		node := fmt.Sprintf("provider-%d", i)
		if _, err := start(node, nodeagent.RoleProvider); err != nil {
			return nil, nil, err
		}
		nodes[node] = schema.RoleProvider
	}
	for i := 1; i <= w.o.Consumers; i++ {
		node := fmt.Sprintf("consumer-%d", i)
		c, err := start(node, nodeagent.RoleConsumer)
		if err != nil {
			return nil, nil, err
		}
		nodes[node] = schema.RoleConsumer
		// Wait until the app finds every provider, then start calling.
		if err := waitResolve(ctx, c, w.service, w.o.Providers); err != nil {
			return nil, nil, err
		}
		cl := startCaller(node, c, w.service, w.o.CallEvery)
		w.stops = append(w.stops, cl.stop)
		callers = append(callers, cl)
	}
	return callers, nodes, nil
}

func waitResolve(ctx context.Context, c *client.Client, service string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := c.Resolve(ctx, service)
		if err == nil && len(res.Endpoints) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumers did not find %d providers of %s in 60s (%v)", n, service, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// plan is the rollout: providers in a canary then the rest, consumers
// likewise; automatic finalize.
func (w *world) plan(from, to end, packages, fromDigest, toDigest string, nodes map[string]string) schema.Plan {
	side := func(e end, digest string) schema.Interface {
		return schema.Interface{Name: e.name(), Kind: e.name(), Address: e.address,
			Package: schema.Package{URL: packages + e.name() + ".tgz", Digest: digest}}
	}
	p := schema.Plan{
		From:  side(from, fromDigest),
		To:    side(to, toDigest),
		Waves: schema.Waves{Canary: 1, Percentages: []int{50, 100}, MaxInFlight: 2},
		Gates: schema.Gates{AckTimeoutSeconds: 15, SoakSeconds: 2, MinHealthyRatio: 1, MinParity: 0.99, FailureBudget: 0,
			OnFailure: coordinator.OnFailureSwitchBack},
		Finalize: coordinator.FinalizeAutomatic,
	}
	for id, role := range nodes {
		p.Nodes = append(p.Nodes, schema.PlanNode{NodeID: id, Roles: []string{role}})
	}
	return p
}

// request publishes a signed request.
func (w *world) request(ctx context.Context, s *events.Signer, req schema.Request) error {
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	prod, err := events.NewProducer(events.DefaultProducerConfig(w.o.Kafka), w.o.Log, m)
	if err != nil {
		return err
	}
	defer prod.Close()
	rec, err := (&events.Encoder{Topics: events.NewTopics(w.prefix), Source: "regshift/demo", Signer: s}).Encode(req)
	if err != nil {
		return err
	}
	return prod.Publish(ctx, rec)
}

// phase is one phase's span.
type phase struct {
	name       coordinator.Phase
	start, end time.Time
}

// watch follows the rollout through the API, printing each step, until it
// ends; with Fail it breaks what Fail names once (see injectFailure).
func (w *world) watch(ctx context.Context, api, id string) (coordinator.Rollout, []phase, error) {
	var phases []phase
	seen := 0
	broken := false
	lastWave := -1
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := getRollout(api, id)
		if err == nil {
			now := time.Now()
			if len(phases) == 0 || phases[len(phases)-1].name != r.Phase {
				if len(phases) > 0 {
					phases[len(phases)-1].end = now
				}
				phases = append(phases, phase{name: r.Phase, start: now})
			}
			for _, d := range r.Decisions[seen:] {
				line := "decision " + string(d.Decision)
				if d.Check != "" {
					line += " [" + string(d.Check)
					if d.Observed != nil && d.Threshold != nil {
						line += fmt.Sprintf(" %.2f vs %.2f", *d.Observed, *d.Threshold)
					}
					line += "]"
				}
				if len(d.Nodes) > 0 {
					line += " nodes " + strings.Join(d.Nodes, ",")
				}
				if d.Detail != "" {
					line += ": " + d.Detail
				}
				w.say("%s", line)
			}
			seen = len(r.Decisions)
			if r.Phase == schema.PhaseRolling && r.Wave != lastWave {
				lastWave = r.Wave
				var ids []string
				for _, n := range r.WaveNodes(r.Wave) {
					ids = append(ids, n.ID)
				}
				w.say("wave %d/%d: %s %s", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Role, strings.Join(ids, " "))
			}
			if !broken {
				broken = w.injectFailure(&r)
			}
			if r.Phase.Ended() {
				phases[len(phases)-1].end = now
				return r, phases, nil
			}
		}
		if time.Now().After(deadline) {
			return coordinator.Rollout{}, nil, fmt.Errorf("rollout %s did not end within 5 minutes", id)
		}
		select {
		case <-ctx.Done():
			return coordinator.Rollout{}, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// injectFailure breaks what Options.Fail names once its moment has come, and
// reports whether it did: Consul once the consumer wave started; the
// provider canary's app once its node is active on the new interface.
func (w *world) injectFailure(r *coordinator.Rollout) bool {
	if r.Phase != schema.PhaseRolling {
		return false
	}
	switch w.o.Fail {
	case FailConsul:
		if r.Waves[r.Wave].Role != schema.RoleConsumer {
			return false
		}
		w.killConsul()
		w.say("FAILURE DEMO: Consul killed under the consumer wave")
		return true
	case FailApp:
		for _, n := range r.WaveNodes(0) {
			if app := w.apps[n.ID]; app != nil && n.Reached == schema.ReachedActive {
				app.failHealth()
				w.say("FAILURE DEMO: %s's app fails its health check after activate (/health answers 503, its calls still work)", n.ID)
				return true
			}
		}
	}
	return false
}

func getRollout(api, id string) (coordinator.Rollout, error) {
	var r coordinator.Rollout
	resp, err := http.Get(api + "/v1/rollouts/" + id)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("%s", resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

func (w *world) report(r coordinator.Rollout, phases []phase, total time.Duration, callers []*caller, ok, failed int64,
	before, after map[string][]string) {
	fmt.Fprintf(w.out, "\n==== report: rollout %s ended %s in %s ====\n", r.ID, r.Phase, total.Round(100*time.Millisecond))
	fmt.Fprintln(w.out, "time per phase:")
	for _, p := range phases {
		fmt.Fprintf(w.out, "  %-15s %s\n", p.name, p.end.Sub(p.start).Round(100*time.Millisecond))
	}
	states := map[string][]string{}
	for _, n := range r.Nodes {
		k := string(n.Reached)
		if k == "" {
			k = "untouched"
		}
		states[k] = append(states[k], n.ID)
	}
	fmt.Fprintln(w.out, "nodes per state:")
	for _, k := range slices.Sorted(maps.Keys(states)) {
		fmt.Fprintf(w.out, "  %-15s %d  %s\n", k, len(states[k]), strings.Join(states[k], " "))
	}
	fmt.Fprintf(w.out, "calls: %d made, %d failed", ok+failed, failed)
	if ok+failed > 0 {
		fmt.Fprintf(w.out, " (%.3f%%)", 100*float64(failed)/float64(ok+failed))
	}
	fmt.Fprintln(w.out, "; per consumer, by the registry that answered:")
	rows := make([]callRow, len(callers))
	for i, c := range callers {
		rows[i] = c.snapshot()
	}
	_ = writeCallTable(w.out, callKinds([]string{string(w.o.From), string(w.o.To)}, rows), rows)
	fmt.Fprintf(w.out, "registries (%s):\n", w.service)
	for _, reg := range []string{string(w.o.From), string(w.o.To)} {
		fmt.Fprintf(w.out, "  %-9s before: %s\n            after:  %s\n", reg, orDash(strings.Join(before[reg], " ")), orDash(strings.Join(after[reg], " ")))
	}
	for _, d := range r.Decisions {
		if d.Decision != schema.DecisionSwitchBack {
			continue
		}
		fmt.Fprintf(w.out, "switch-back decided on %s: observed %v, threshold %v, nodes %s — %s\n", d.Check, deref(d.Observed), deref(d.Threshold),
			orDash(strings.Join(d.Nodes, " ")), d.Detail)
		if len(d.Nodes) == 0 {
			fmt.Fprintf(w.out, "caught by: %s: %s\n", d.Check, d.Detail)
		}
		for _, id := range d.Nodes {
			fmt.Fprintf(w.out, "caught by: %s on %s: %s\n", d.Check, id, nodeReason(d, id, r.Node(id)))
		}
	}
}

// nodeReason is why the gate judged node id in decision d: what d's Detail
// says of it — the coordinator lists "<id>: <reason>" per node, in d.Nodes'
// order, after the gate's own words — or else the node's health as the
// rollout ended, or else the whole Detail.
func nodeReason(d coordinator.Decision, id string, n *coordinator.Node) string {
	if i := strings.Index(d.Detail, id+": "); i >= 0 {
		reason := d.Detail[i+len(id)+2:]
		if k := slices.Index(d.Nodes, id); k+1 < len(d.Nodes) {
			if j := strings.Index(reason, "; "+d.Nodes[k+1]+": "); j >= 0 {
				reason = reason[:j]
			}
		}
		return reason
	}
	if n != nil && n.HealthDetail != "" {
		return fmt.Sprintf("%s (%s)", n.Health, n.HealthDetail)
	}
	return d.Detail
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deref(f *float64) any {
	if f == nil {
		return "-"
	}
	return *f
}
