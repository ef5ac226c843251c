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
	k := &Kafka{}
	given := o
	k.Container = runRetrying(t, "kafka", func() testcontainers.ContainerRequest {
		o.Port, o.ControllerPort = portOr(t, given.Port), portOr(t, given.ControllerPort)
		k.Brokers = []string{addr(o.Port)}
		return testcontainers.ContainerRequest{
			Image: o.Image,
			Env:   map[string]string{"KAFKA_PORT": strconv.Itoa(o.Port), "KAFKA_CONTROLLER_PORT": strconv.Itoa(o.ControllerPort)},
		}
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
	z := &ZooKeeper{}
	given := o
	z.Container = runRetrying(t, "zookeeper", func() testcontainers.ContainerRequest {
		o.Port = portOr(t, given.Port)
		z.Addr = addr(o.Port)
		return testcontainers.ContainerRequest{Image: o.Image, Env: map[string]string{"ZK_PORT": strconv.Itoa(o.Port)}}
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
	c := &Consul{}
	given := o
	c.Container = runRetrying(t, "consul", func() testcontainers.ContainerRequest {
		o.HTTPPort, o.ServerPort = portOr(t, given.HTTPPort), portOr(t, given.ServerPort)
		o.SerfLANPort, o.SerfWANPort = portOr(t, given.SerfLANPort), portOr(t, given.SerfWANPort)
		c.Addr = addr(o.HTTPPort)
		return testcontainers.ContainerRequest{
			Image: o.Image,
			Env: map[string]string{
				"CONSUL_HTTP_PORT": strconv.Itoa(o.HTTPPort), "CONSUL_SERVER_PORT": strconv.Itoa(o.ServerPort),
				"CONSUL_SERF_LAN_PORT": strconv.Itoa(o.SerfLANPort), "CONSUL_SERF_WAN_PORT": strconv.Itoa(o.SerfWANPort),
			},
		}
	}, func(ctx context.Context) error { return servers.ProbeConsul(ctx, c.Addr) })
	return c
}

// portOr is port, or a free one when port is 0.
func portOr(t testing.TB, port int) int {
	if port == 0 {
		return servers.FreePort(t)
	}
	return port
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
