package benchfleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/schema"
)

// RolloutID is the id of the rollout every run makes.
const RolloutID = "bench"

const (
	rolloutID = RolloutID
	keyID     = "bench-coordinator"
)

// coord is the coordinator runtime, in this process or in a child (-split).
type coord struct {
	api     string
	brokers []string
	topics  events.Topics
	groups  []string // the consumer groups it joins, deleted after the run
	child   *child   // nil when it runs in this process
	stop    func()
}

// coordSettings are what a bench coordinator runs with, in this process or
// in a child, which gets them as flags (args).
type coordSettings struct {
	brokers    []string
	prefix     string
	partitions int
	keyFile    string
	// nodeKeys is the folder of every node's <id>.pub the coordinator
	// verifies the fleet's events with; empty: the fleet publishes them
	// unsigned (-unsigned-events) and the coordinator accepts that.
	nodeKeys string
}

func (s coordSettings) args() []string {
	return []string{"-brokers", strings.Join(s.brokers, ","), "-prefix", s.prefix, "-partitions", strconv.Itoa(s.partitions), "-key", s.keyFile,
		"-node-keys", s.nodeKeys}
}

// newServer builds the coordinator: server.DefaultConfig() but for the
// settings, its registries in memory (empty on both sides: parity 1).
func newServer(s coordSettings, reg *prometheus.Registry, log *slog.Logger) (*server.Server, error) {
	cfg := server.DefaultConfig()
	cfg.ID, cfg.Brokers, cfg.TopicPrefix, cfg.SigningKey, cfg.AcceptUnsigned = keyID, s.brokers, s.prefix, s.keyFile, true
	cfg.NodeKeysDir = s.nodeKeys
	cfg.AcceptUnsignedEvents = s.nodeKeys == "" // -unsigned-events: the fleet publishes them unsigned
	cfg.CommandPartitions = s.partitions
	// The gate after a soak waits for a registry report taken after the
	// soak began: report often, so that wait stays short.
	cfg.RegistryEvery = 500 * time.Millisecond
	old, fresh := memory.NewStore(), memory.NewStore()
	open := func(kind, _ string, log *slog.Logger) (registries.Registry, error) {
		if kind == string(registries.KindZooKeeper) {
			return memory.New(old, log), nil
		}
		return memory.New(fresh, log), nil
	}
	return server.New(cfg, server.Deps{Registry: reg, Open: open}, log)
}

// startCoordinator runs a coordinator on brokers under prefix, signing
// with a new key written to dir and verifying events with the node keys in
// nodeKeys ("": accepting them unsigned): in this process, or with split
// in a child started by command. It returns once the coordinator leads,
// with the public key its commands verify with.
func startCoordinator(ctx context.Context, brokers []string, prefix string, partitions int, dir, nodeKeys string, split bool,
	command func(args ...string) *exec.Cmd, log *slog.Logger) (*coord, ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyFile, _, err := events.WriteKeyPair(dir, keyID, priv)
	if err != nil {
		return nil, nil, err
	}
	settings := coordSettings{brokers: brokers, prefix: prefix, partitions: partitions, keyFile: keyFile, nodeKeys: nodeKeys}
	c := &coord{brokers: brokers, topics: events.NewTopics(prefix),
		groups: []string{prefix + "coordinator", prefix + "coordinator-events", prefix + "coordinator-requests"}}
	var exited <-chan struct{} // closed once the coordinator ended, with ended() its error
	var ended func() error
	if split {
		if c.child, err = startChild(command, settings, log); err != nil {
			return nil, nil, err
		}
		c.api, c.stop, exited, ended = c.child.api, c.child.stop, c.child.done, func() error { return c.child.err }
	} else {
		s, err := newServer(settings, prometheus.NewRegistry(), log)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done, serveErr := make(chan struct{}), error(nil)
		go func() { serveErr = s.Serve(sctx, ln); close(done) }()
		c.api, c.stop, exited, ended = "http://"+ln.Addr().String(), func() { cancel(); <-done }, done, func() error { return serveErr }
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var h server.Health
		err := getJSON(ctx, c.api+"/healthz", &h)
		if err == nil && h.Leader {
			return c, pub, nil
		}
		select {
		case <-exited:
			c.stop()
			return nil, nil, fmt.Errorf("coordinator ended: %v", ended())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, nil, fmt.Errorf("coordinator did not lead within a minute (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// plan moves n nodes from a ZooKeeper to a Consul interface (both served
// by memory registries: the addresses are well-formed for their kinds and
// never dialled): waves canary 1, 10, 50, 100 % of each role, all in
// flight at once, every gate soaking soak, finalized automatically.
func plan(n int, soak time.Duration) schema.Plan {
	p := schema.Plan{
		From: schema.Interface{Name: "zookeeper", Kind: string(registries.KindZooKeeper), Address: "127.0.0.1:2181",
			Package: schema.Package{URL: "http://127.0.0.1/packages/zookeeper.tgz", Digest: "sha256:" + hexDigits}},
		To: schema.Interface{Name: "consul", Kind: string(registries.KindConsul), Address: "127.0.0.1:8500",
			Package: schema.Package{URL: "http://127.0.0.1/packages/consul.tgz", Digest: "sha256:" + hexDigits}},
		Waves: schema.Waves{Canary: 1, Percentages: []int{10, 50, 100}, MaxInFlight: n},
		Gates: schema.Gates{AckTimeoutSeconds: 600, SoakSeconds: int(soak / time.Second), MinHealthyRatio: 1, MinParity: 0.99,
			FailureBudget: 0, OnFailure: coordinator.OnFailureSwitchBack},
		Finalize: coordinator.FinalizeAutomatic,
		Nodes:    make([]schema.PlanNode, n),
	}
	for i := range p.Nodes {
		role := schema.RoleProvider
		if i%2 == 1 {
			role = schema.RoleConsumer
		}
		p.Nodes[i] = schema.PlanNode{NodeID: nodeID(i), Roles: []string{role}}
	}
	return p
}

const hexDigits = "4f8b2c1e0d9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"

// outcome is how a rollout ended, as the coordinator's API shows it.
type outcome struct {
	phase schema.RolloutPhase
	waves int
	at    time.Time // when the last decision was made (the coordinator's clock: this process's)
	why   string    // why it did not finalize; "" when it did
}

// watch polls the rollout's summary until it ends, the create request is
// dead-lettered, or timeout passes.
func (c *coord) watch(ctx context.Context, timeout time.Duration) outcome {
	deadline := time.Now().Add(timeout)
	var last outcome
	for {
		var list []server.Summary
		if err := getJSON(ctx, c.api+"/v1/rollouts", &list); err == nil {
			for _, s := range list {
				if s.ID != rolloutID {
					continue
				}
				last.phase, last.waves, last.at = s.Phase, s.Waves, time.Now()
				if s.Decision != nil {
					last.at = s.Decision.At
				}
			}
		}
		switch {
		case last.phase == schema.PhaseFinalized:
			return last
		case last.phase.Ended():
			last.why = "the rollout ended " + string(last.phase)
			return last
		case c.deadLetters(ctx, c.topics.Requests) > 0:
			last.why, last.at = "the coordinator dead-lettered the create request: "+deadLetterReason(ctx, c.brokers, c.topics, c.topics.Requests), time.Now()
			return last
		case ctx.Err() != nil:
			last.why, last.at = fmt.Sprintf("interrupted (phase %q)", last.phase), time.Now()
			return last
		case time.Now().After(deadline):
			last.why, last.at = fmt.Sprintf("not ended within %s (phase %q)", timeout, last.phase), time.Now()
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deadLetters is how many records read from topic the coordinator
// dead-lettered, from its own metrics (its /metrics endpoint); 0 when they
// cannot be read.
func (c *coord) deadLetters(ctx context.Context, topic string) float64 {
	n, _ := c.deadLettersOf(ctx, topic)
	return n
}

// deadLettersOf is deadLetters, or why it could not be read.
func (c *coord) deadLettersOf(ctx context.Context, topic string) (float64, error) {
	mfs, err := scrape(ctx, c.api+"/metrics")
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "regshift_events_dead_letters_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n, nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(url + ": " + resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// scrape reads a Prometheus text exposition.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(url + ": " + resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// deadLetterReason is the error the coordinator gave for the first record
// of topic it dead-lettered, read from the dead-letter topic.
func deadLetterReason(ctx context.Context, brokers []string, t events.Topics, topic string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for p := range events.DefaultTopicsConfig().DLQPartitions {
		end, err := endOffsetOf(ctx, brokers, t.DLQ, p)
		if err != nil || end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: t.DLQ, Partition: p, MaxWait: 250 * time.Millisecond})
		for next := int64(0); next < end; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				break
			}
			if header(m, events.HeaderDLQTopic) == topic {
				_ = r.Close()
				return header(m, events.HeaderDLQError)
			}
			next = m.Offset + 1
		}
		_ = r.Close()
	}
	return "see -log-level warn"
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
