package containers

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/regshift/regshift/itest/servers"
)

// KafkaOptions configures StartKafka; zero values pick free ports and the
// default image.
type KafkaOptions struct {
	Image          string
	Port           int // broker listener
	ControllerPort int
}

// Kafka is a single-node KRaft broker in a container.
type Kafka struct {
	*Container
	Brokers []string // 127.0.0.1:Port
}

// StartKafka starts a Kafka broker (broker and controller in one process);
// its data lives in the container, so a Restart keeps topics and offsets.
func StartKafka(t testing.TB, o KafkaOptions) *Kafka {
	t.Helper()
	if o.Image == "" {
		o.Image = DefaultImages().Kafka
	}
	if o.Port == 0 {
		o.Port = servers.FreePort(t)
	}
	if o.ControllerPort == 0 {
		o.ControllerPort = servers.FreePort(t)
	}
	k := &Kafka{Brokers: []string{addr(o.Port)}}
	k.Container = run(t, "kafka", testcontainers.ContainerRequest{
		Image: o.Image,
		Env:   map[string]string{"KAFKA_PORT": strconv.Itoa(o.Port), "KAFKA_CONTROLLER_PORT": strconv.Itoa(o.ControllerPort)},
	}, func(ctx context.Context) error { return servers.ProbeKafka(ctx, k.Brokers) })
	return k
}

// ZooKeeperOptions configures StartZooKeeper.
type ZooKeeperOptions struct {
	Image string
	Port  int // client port
}

// ZooKeeper is a standalone ZooKeeper in a container.
type ZooKeeper struct {
	*Container
	Addr string // 127.0.0.1:Port
}

// StartZooKeeper starts a standalone ZooKeeper.
func StartZooKeeper(t testing.TB, o ZooKeeperOptions) *ZooKeeper {
	t.Helper()
	if o.Image == "" {
		o.Image = DefaultImages().ZooKeeper
	}
	if o.Port == 0 {
		o.Port = servers.FreePort(t)
	}
	z := &ZooKeeper{Addr: addr(o.Port)}
	z.Container = run(t, "zookeeper", testcontainers.ContainerRequest{
		Image: o.Image,
		Env:   map[string]string{"ZK_PORT": strconv.Itoa(o.Port)},
	}, func(ctx context.Context) error { return servers.ProbeZooKeeper(ctx, []string{z.Addr}) })
	return z
}

// ConsulOptions configures StartConsul; zero ports are picked free.
type ConsulOptions struct {
	Image                                          string
	HTTPPort, ServerPort, SerfLANPort, SerfWANPort int
}

// Consul is a Consul -dev server in a container.
type Consul struct {
	*Container
	Addr string // HTTP API, 127.0.0.1:HTTPPort
}

// StartConsul starts a Consul -dev server (it elects itself leader).
func StartConsul(t testing.TB, o ConsulOptions) *Consul {
	t.Helper()
	if o.Image == "" {
		o.Image = DefaultImages().Consul
	}
	for _, p := range []*int{&o.HTTPPort, &o.ServerPort, &o.SerfLANPort, &o.SerfWANPort} {
		if *p == 0 {
			*p = servers.FreePort(t)
		}
	}
	c := &Consul{Addr: addr(o.HTTPPort)}
	c.Container = run(t, "consul", testcontainers.ContainerRequest{
		Image: o.Image,
		Env: map[string]string{
			"CONSUL_HTTP_PORT": strconv.Itoa(o.HTTPPort), "CONSUL_SERVER_PORT": strconv.Itoa(o.ServerPort),
			"CONSUL_SERF_LAN_PORT": strconv.Itoa(o.SerfLANPort), "CONSUL_SERF_WAN_PORT": strconv.Itoa(o.SerfWANPort),
		},
	}, func(ctx context.Context) error { return servers.ProbeConsul(ctx, c.Addr) })
	return c
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
