package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestAPIAnswersWhileAPublishRetries makes the broker refuse every produce
// with a retriable error (a Kafka hiccup: the partition lost its in-sync
// replicas) under a leading coordinator whose rollout re-sends commands:
// the owner goroutine is then stuck in a publish that retries for minutes,
// while the replica keeps its lead (group heartbeats still work). /healthz
// and the rollout view must still answer at once, from the last snapshot —
// they never wait on the owner or on Kafka. (A broker that is gone
// altogether ends the replica's lead instead: the elector's generation
// ends and the owner's publish is cancelled with it.)
func TestAPIAnswersWhileAPublishRetries(t *testing.T) {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyFile, _, err := events.WriteKeyPair(dir, "coord-test", priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.ID, cfg.Brokers, cfg.SigningKey, cfg.AcceptUnsigned = "coord-test", brokers, keyFile, true
	cfg.NodeKeysDir = t.TempDir() // no agent: no event to accept
	cfg.Tick, cfg.RegistryEvery, cfg.CommandPartitions = 50*time.Millisecond, 100*time.Millisecond, 2
	reg := prometheus.NewRegistry()
	s, err := server.New(cfg, server.Deps{Registry: reg, Open: memoryRegistries()}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the coordinator did not stop within 30s of its context")
		}
	}()
	await(t, "leading", func() error {
		var h server.Health
		if err := getJSON(api+"/healthz", &h); err != nil || !h.Leader {
			return fmt.Errorf("healthz %+v %v", h, err)
		}
		return nil
	})

	// A rollout whose nodes have no agents: its commands stay pending and
	// are re-sent every second, each re-send a publish.
	b, err := os.ReadFile("../testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := coordinator.ParsePlan(b)
	if err != nil {
		t.Fatal(err)
	}
	plan.Gates.AckTimeoutSeconds = 600
	prod, err := events.NewProducer(events.DefaultProducerConfig(brokers), testLog(t), mustMetrics(t))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	enc := &events.Encoder{Topics: events.NewTopics(cfg.TopicPrefix), Source: "test"}
	rec, err := enc.Encode(&schema.CreateRollout{RequestHeader: schema.RequestHeader{RequestID: "req-1", RolloutID: "ro-1",
		RequestedBy: "test", RequestedAt: time.Now().UTC()}, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Publish(ctx, rec); err != nil {
		t.Fatal(err)
	}
	await(t, "a command pending", func() error {
		var r coordinator.Rollout
		if err := getJSON(api+"/v1/rollouts/ro-1", &r); err != nil {
			return err
		}
		if n := r.Node("p1"); r.Phase != schema.PhaseRolling || n == nil || n.Pending == nil {
			return fmt.Errorf("phase %s", r.Phase)
		}
		return nil
	})

	broker.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		broker.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	await(t, "the owner's publish retrying", func() error {
		if n := metric(t, api, `regshift_events_publish_retries_total{topic="regshift.state"}`); n < 1 {
			return fmt.Errorf("%v retries so far", n)
		}
		return nil
	})
	fastest := time.Hour
	for range 5 {
		start := time.Now()
		var h server.Health
		if err := getJSON(api+"/healthz", &h); err != nil || !h.Leader {
			t.Fatalf("healthz while the broker is down: %+v %v", h, err)
		}
		fastest = min(fastest, time.Since(start))
		var r coordinator.Rollout
		if err := getJSON(api+"/v1/rollouts/ro-1", &r); err != nil || r.ID != "ro-1" {
			t.Fatalf("rollout view while the broker is down: %v", err)
		}
	}
	// The answers came while the owner was still inside that publish: it
	// has not given up (no failed command publish yet) nor succeeded.
	if n := metric(t, api, `regshift_events_published_total{outcome="error",topic="regshift.state"}`); n != 0 {
		t.Fatalf("the publish ended (%v failed) before the API was asked: the test proves nothing", n)
	}
	t.Logf("fastest /healthz while the owner's publish retries: %s", fastest)
	if fastest > 100*time.Millisecond {
		t.Fatalf("/healthz took at least %s while a publish retried, want under 100ms", fastest)
	}
}

func await(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

func getJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metric reads one sample from the coordinator's /metrics; 0 when absent.
func metric(t *testing.T, api, sample string) float64 {
	t.Helper()
	resp, err := client.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

func mustMetrics(t *testing.T) *events.Metrics {
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }
