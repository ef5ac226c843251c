// Package servers finds the real servers regshift's tests run against —
// Apache Kafka, ZooKeeper, Consul, etcd, Eureka and the Docker engine — started by
// `make up` (scripts/services.sh) or by anything else that serves the same
// addresses.
//
// Each server's address comes from an environment variable with a loopback
// default:
//
//	REGSHIFT_KAFKA_BROKERS  127.0.0.1:9092   (comma-separated)
//	REGSHIFT_ZK_SERVERS     127.0.0.1:2181   (comma-separated)
//	REGSHIFT_CONSUL_ADDR    127.0.0.1:8500
//	REGSHIFT_ETCD_ENDPOINTS 127.0.0.1:2379   (comma-separated)
//	REGSHIFT_EUREKA_ADDR    127.0.0.1:8761   (its REST API under /eureka)
//	REGSHIFT_DOCKER_HOST    unix:///var/run/docker.sock (DOCKER_HOST is honoured too)
//
// The port-only variables that scripts/services.sh reads (REGSHIFT_KAFKA_PORT,
// REGSHIFT_ZK_PORT, REGSHIFT_CONSUL_HTTP_PORT, REGSHIFT_ETCD_PORT,
// REGSHIFT_EUREKA_PORT) are honoured as well, so one setting moves both the
// servers and the tests.
//
// Every helper probes its server with a real protocol request (a Kafka
// metadata request, ZooKeeper's "ruok", Consul's leader endpoint, etcd's
// /health, Eureka's registry as JSON, Docker's /_ping). When the server does
// not answer, the test fails with a message that names the server, the address
// and how to start it — when CI=true or
// REGSHIFT_REQUIRE_SERVERS=1. Otherwise it is skipped with the same message, so
// that `go test ./...` on a laptop without servers still runs the unit tests.
package servers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// probeTimeout bounds each probe; a server that answers slower than this is
// treated as missing.
const probeTimeout = 5 * time.Second

// Kind names one of the real servers.
type Kind string

// The servers this package knows.
const (
	Kafka     Kind = "kafka"
	ZooKeeper Kind = "zookeeper"
	Consul    Kind = "consul"
	Docker    Kind = "docker"
)

// ErrNotReachable is wrapped by every probe failure.
var ErrNotReachable = errors.New("server not reachable")

// Required reports whether a missing server fails the test instead of
// skipping it: under CI (CI=true) or with REGSHIFT_REQUIRE_SERVERS=1.
func Required() bool {
	return truthy(os.Getenv("CI")) || truthy(os.Getenv("REGSHIFT_REQUIRE_SERVERS"))
}

func truthy(s string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err == nil && b
}

// KafkaBrokers returns the configured broker addresses without probing them.
func KafkaBrokers() []string {
	return list("REGSHIFT_KAFKA_BROKERS", "127.0.0.1:"+envOr("REGSHIFT_KAFKA_PORT", "9092"))
}

// ZooKeeperServers returns the configured ZooKeeper addresses without probing.
func ZooKeeperServers() []string {
	return list("REGSHIFT_ZK_SERVERS", "127.0.0.1:"+envOr("REGSHIFT_ZK_PORT", "2181"))
}

// ConsulAddr returns the configured Consul HTTP address (host:port) without probing.
func ConsulAddr() string {
	return envOr("REGSHIFT_CONSUL_ADDR", "127.0.0.1:"+envOr("REGSHIFT_CONSUL_HTTP_PORT", "8500"))
}

// DockerHost returns the configured Docker engine endpoint without probing.
func DockerHost() string {
	if v := os.Getenv("REGSHIFT_DOCKER_HOST"); v != "" {
		return v
	}
	return envOr("DOCKER_HOST", "unix:///var/run/docker.sock")
}

// RequireKafka returns the broker addresses once a metadata request to them
// succeeded, or ends the test (see the package doc).
func RequireKafka(t testing.TB) []string {
	t.Helper()
	brokers := KafkaBrokers()
	need(t, Kafka, strings.Join(brokers, ","), "REGSHIFT_KAFKA_BROKERS", ProbeKafka(context.Background(), brokers))
	return brokers
}

// RequireZooKeeper returns the ZooKeeper addresses once each answered "imok".
func RequireZooKeeper(t testing.TB) []string {
	t.Helper()
	zks := ZooKeeperServers()
	need(t, ZooKeeper, strings.Join(zks, ","), "REGSHIFT_ZK_SERVERS", ProbeZooKeeper(context.Background(), zks))
	return zks
}

// RequireConsul returns Consul's HTTP address once it reports a leader.
func RequireConsul(t testing.TB) string {
	t.Helper()
	addr := ConsulAddr()
	need(t, Consul, addr, "REGSHIFT_CONSUL_ADDR", ProbeConsul(context.Background(), addr))
	return addr
}

// RequireDocker checks that the Docker engine answers and sets what
// testcontainers-go needs on this machine (loopback host, no reaper image,
// the engine's endpoint) for the rest of the test.
func RequireDocker(t testing.TB) {
	t.Helper()
	host := DockerHost()
	need(t, Docker, host, "REGSHIFT_DOCKER_HOST", ProbeDocker(context.Background(), host))
	setenv(t, "DOCKER_HOST", host)
	setenv(t, "TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	setenv(t, "TESTCONTAINERS_RYUK_DISABLED", "true")
}

func setenv(t testing.TB, k, v string) {
	if st, ok := t.(interface{ Setenv(string, string) }); ok {
		st.Setenv(k, v)
		return
	}
	if err := os.Setenv(k, v); err != nil {
		t.Fatalf("setenv %s: %v", k, err)
	}
}

func need(t testing.TB, kind Kind, addr, envVar string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s (set by %s): %v\n"+
		"\tstart it with `make up` (scripts/services.sh up %s); see README.md", kind, addr, envVar, err, kind)
	if Required() {
		t.Fatal(msg)
		return
	}
	t.Skip(msg + "\n\t(skipped: set CI=true or REGSHIFT_REQUIRE_SERVERS=1 to make this a failure)")
}

// ProbeKafka sends a metadata request to the first broker that accepts a
// connection and checks that the cluster names at least one broker.
func ProbeKafka(ctx context.Context, brokers []string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var errs []error
	for _, b := range brokers {
		conn, err := (&kafka.Dialer{Timeout: probeTimeout}).DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(probeTimeout))
		got, err := conn.Brokers()
		_ = conn.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata request to %s: %w", b, err))
			continue
		}
		if len(got) == 0 {
			errs = append(errs, fmt.Errorf("metadata from %s names no broker", b))
			continue
		}
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNotReachable, errors.Join(errs...))
}

// ProbeZooKeeper sends the four-letter word "ruok" to every server and
// expects "imok" from each.
func ProbeZooKeeper(ctx context.Context, servers []string) error {
	return probeEach(ctx, servers, ruok)
}

// probeEach runs probe on every address; the first failure, wrapping
// ErrNotReachable and naming the address, ends it.
func probeEach(ctx context.Context, addrs []string, probe func(ctx context.Context, addr string) error) error {
	for _, a := range addrs {
		if err := probe(ctx, a); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotReachable, a, err)
		}
	}
	return nil
}

func ruok(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if string(b) != "imok" {
		return fmt.Errorf("ruok answered %q, want \"imok\" (is ruok in 4lw.commands.whitelist?)", b)
	}
	return nil
}

// ProbeConsul asks Consul's HTTP API for the raft leader and expects one.
func ProbeConsul(ctx context.Context, addr string) error {
	code, b, err := httpGet(ctx, "http://"+addr+"/v1/status/leader")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReachable, err)
	}
	leader := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if code != http.StatusOK || leader == "" {
		return fmt.Errorf("%w: /v1/status/leader answered %d %q: no leader elected", ErrNotReachable, code, b)
	}
	return nil
}

// httpGet GETs url within probeTimeout and returns the status code and up
// to 1 KiB of the body.
func httpGet(ctx context.Context, url string) (code int, body []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, body, nil
}

// ProbeDocker calls the engine's /_ping endpoint (unix:// or tcp:// host).
func ProbeDocker(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	client, base, err := dockerClient(host)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReachable, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || string(b) != "OK" {
		return fmt.Errorf("%w: /_ping answered %d %q", ErrNotReachable, resp.StatusCode, b)
	}
	return nil
}

func dockerClient(host string) (*http.Client, string, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		return &http.Client{Transport: tr}, "http://docker", nil
	case strings.HasPrefix(host, "tcp://"):
		return http.DefaultClient, "http://" + strings.TrimPrefix(host, "tcp://"), nil
	default:
		return nil, "", fmt.Errorf("docker host %q: want unix:// or tcp://", host)
	}
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}

func list(k, def string) []string {
	var out []string
	for _, s := range strings.Split(envOr(k, def), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
