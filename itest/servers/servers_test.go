package servers

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestAddressesFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		got  func() string
		want string
	}{
		{"kafka default", nil, func() string { return strings.Join(KafkaBrokers(), ",") }, "127.0.0.1:9092"},
		{"kafka port", map[string]string{"REGSHIFT_KAFKA_PORT": "19092"}, func() string { return strings.Join(KafkaBrokers(), ",") }, "127.0.0.1:19092"},
		{"kafka list wins", map[string]string{"REGSHIFT_KAFKA_PORT": "1", "REGSHIFT_KAFKA_BROKERS": " a:1, b:2 ,"}, func() string { return strings.Join(KafkaBrokers(), ",") }, "a:1,b:2"},
		{"zk default", nil, func() string { return strings.Join(ZooKeeperServers(), ",") }, "127.0.0.1:2181"},
		{"zk port", map[string]string{"REGSHIFT_ZK_PORT": "12181"}, func() string { return strings.Join(ZooKeeperServers(), ",") }, "127.0.0.1:12181"},
		{"consul default", nil, ConsulAddr, "127.0.0.1:8500"},
		{"consul port", map[string]string{"REGSHIFT_CONSUL_HTTP_PORT": "18500"}, ConsulAddr, "127.0.0.1:18500"},
		{"etcd default", nil, func() string { return strings.Join(EtcdEndpoints(), ",") }, "127.0.0.1:2379"},
		{"etcd port", map[string]string{"REGSHIFT_ETCD_PORT": "12379"}, func() string { return strings.Join(EtcdEndpoints(), ",") }, "127.0.0.1:12379"},
		{"etcd list wins", map[string]string{"REGSHIFT_ETCD_PORT": "1", "REGSHIFT_ETCD_ENDPOINTS": "a:1,b:2"}, func() string { return strings.Join(EtcdEndpoints(), ",") }, "a:1,b:2"},
		{"eureka default", nil, EurekaAddr, "127.0.0.1:8761"},
		{"eureka port", map[string]string{"REGSHIFT_EUREKA_PORT": "18761"}, EurekaAddr, "127.0.0.1:18761"},
		{"eureka addr wins", map[string]string{"REGSHIFT_EUREKA_PORT": "1", "REGSHIFT_EUREKA_ADDR": "e:2"}, EurekaAddr, "e:2"},
		{"docker default", nil, DockerHost, "unix:///var/run/docker.sock"},
		{"docker DOCKER_HOST", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"}, DockerHost, "tcp://127.0.0.1:2375"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"REGSHIFT_KAFKA_BROKERS", "REGSHIFT_KAFKA_PORT", "REGSHIFT_ZK_SERVERS", "REGSHIFT_ZK_PORT",
				"REGSHIFT_CONSUL_ADDR", "REGSHIFT_CONSUL_HTTP_PORT", "REGSHIFT_ETCD_ENDPOINTS", "REGSHIFT_ETCD_PORT",
				"REGSHIFT_EUREKA_ADDR", "REGSHIFT_EUREKA_PORT",
				"REGSHIFT_DOCKER_HOST", "DOCKER_HOST"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got := tt.got(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequired(t *testing.T) {
	for _, tt := range []struct {
		ci, req string
		want    bool
	}{{"", "", false}, {"true", "", true}, {"false", "", false}, {"", "1", true}, {"1", "0", true}, {"yes", "", false}} {
		t.Setenv("CI", tt.ci)
		t.Setenv("REGSHIFT_REQUIRE_SERVERS", tt.req)
		if got := Required(); got != tt.want {
			t.Errorf("CI=%q REGSHIFT_REQUIRE_SERVERS=%q: Required()=%v, want %v", tt.ci, tt.req, got, tt.want)
		}
	}
}

func TestProbesFailOnClosedPort(t *testing.T) {
	addr := ClosedAddr(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"kafka":     ProbeKafka(ctx, []string{addr}),
		"zookeeper": ProbeZooKeeper(ctx, []string{addr}),
		"consul":    ProbeConsul(ctx, addr),
		"eureka":    ProbeEureka(ctx, addr),
		"docker":    ProbeDocker(ctx, "tcp://"+addr),
		"etcd":      ProbeEtcd(ctx, []string{addr}),
	} {
		if !errors.Is(err, ErrNotReachable) {
			t.Errorf("%s probe of closed %s: got %v, want ErrNotReachable", name, addr, err)
		}
	}
	if err := ProbeDocker(ctx, "ssh://x"); err == nil {
		t.Error("docker probe accepted an ssh:// host")
	}
}

// TestZooKeeperProbeWantsImok serves a wrong four-letter-word answer.
func TestZooKeeperProbeWantsImok(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 4)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte("ruok is not executed because it is not in the whitelist."))
		_ = c.Close()
	}()
	err = ProbeZooKeeper(context.Background(), []string{l.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "whitelist") {
		t.Fatalf("got %v, want an error about the answer", err)
	}
}

// recorder stands in for a test to see whether need fails or skips.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.fatal = args[0].(string) }
func (r *recorder) Skip(args ...any)  { r.skip = args[0].(string) }

func TestMissingServerFailsUnderCI(t *testing.T) {
	missing := errors.New("connection refused")
	t.Run("CI fails", func(t *testing.T) {
		t.Setenv("CI", "true")
		r := &recorder{}
		need(r, Kafka, "127.0.0.1:1", "REGSHIFT_KAFKA_BROKERS", missing)
		if r.skip != "" || !strings.Contains(r.fatal, "kafka is not reachable at 127.0.0.1:1") ||
			!strings.Contains(r.fatal, "make up") || !strings.Contains(r.fatal, "connection refused") {
			t.Fatalf("fatal=%q skip=%q", r.fatal, r.skip)
		}
	})
	t.Run("laptop skips", func(t *testing.T) {
		t.Setenv("CI", "")
		t.Setenv("REGSHIFT_REQUIRE_SERVERS", "")
		r := &recorder{}
		need(r, Consul, "127.0.0.1:1", "REGSHIFT_CONSUL_ADDR", missing)
		if r.fatal != "" || !strings.Contains(r.skip, "consul is not reachable") {
			t.Fatalf("fatal=%q skip=%q", r.fatal, r.skip)
		}
	})
	t.Run("present passes", func(t *testing.T) {
		t.Setenv("CI", "true")
		r := &recorder{}
		need(r, Docker, "unix:///x", "REGSHIFT_DOCKER_HOST", nil)
		if r.fatal != "" || r.skip != "" {
			t.Fatalf("fatal=%q skip=%q", r.fatal, r.skip)
		}
	})
}
