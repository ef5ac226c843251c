package open

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/zookeeper"
)

func TestZooKeeperConfig(t *testing.T) {
	with := func(f func(*zookeeper.Config), servers ...string) zookeeper.Config {
		c := zookeeper.DefaultConfig(servers...)
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		s    Settings
		want zookeeper.Config
	}{
		{"address only, the default base path",
			Settings{Address: "zk1:2181,zk2:2181"},
			zookeeper.DefaultConfig("zk1:2181", "zk2:2181")},
		{"base path in the address, as plans write it",
			Settings{Address: "zk1:2181, zk2:2181/app/services"},
			with(func(c *zookeeper.Config) { c.BasePath = "/app/services" }, "zk1:2181", "zk2:2181")},
		{"base path in the settings, as agent configs write it",
			Settings{Address: "zk1:2181", BasePath: "/app/services"},
			with(func(c *zookeeper.Config) { c.BasePath = "/app/services" }, "zk1:2181")},
		{"the same base path in both",
			Settings{Address: "zk1:2181/app", BasePath: "/app"},
			with(func(c *zookeeper.Config) { c.BasePath = "/app" }, "zk1:2181")},
		{"session timeout; Consul settings ignored",
			Settings{Address: "zk1:2181", SessionTimeout: 30 * time.Second, Datacenter: "dc1", Token: "t", KeepOnClose: true,
				Mirrors: true, MirrorNode: "m"},
			with(func(c *zookeeper.Config) { c.SessionTimeout = 30 * time.Second }, "zk1:2181")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := zookeeperConfig(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("zookeeperConfig(%+v)\n got %+v\nwant %+v", tc.s, got, tc.want)
			}
		})
	}
}

func TestZooKeeperConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		says string
	}{
		{"no address", Settings{}, "no servers"},
		{"bad server", Settings{Address: "zk1:2181,zk2"}, `server 2 "zk2": not host:port`},
		{"base paths differ", Settings{Address: "zk1:2181/a", BasePath: "/b"},
			`the address "zk1:2181/a" names base path "/a" but BasePath is "/b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := zookeeperConfig(tc.s)
			if !errors.Is(err, zookeeper.ErrConfig) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("zookeeperConfig(%+v) = %v; want a zookeeper.ErrConfig saying %q", tc.s, err, tc.says)
			}
		})
	}
}

func TestCatalogConfig(t *testing.T) {
	base := consul.DefaultConfig()
	base.Address = "consul:8500"
	tls := &consul.TLSConfig{CAFile: "/p/ca.pem"}
	for _, tc := range []struct {
		name string
		s    Settings
		want consul.CatalogConfig
	}{
		{"mirrors on the default node",
			Settings{Address: "consul:8500", Mirrors: true},
			consul.CatalogConfig{Config: base, Node: "regshift-mirrors", NodeAddress: "127.0.0.1"}},
		{"mirror node, with the agent settings",
			Settings{Address: "consul:8500", Mirrors: true, MirrorNode: "mirrors-b", Token: "secret", TLS: tls, KeepOnClose: true},
			consul.CatalogConfig{Config: func() consul.Config {
				c := base
				c.Token, c.Scheme, c.TLS, c.DeregisterOnClose = "secret", "https", *tls, false
				return c
			}(), Node: "mirrors-b", NodeAddress: "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := catalogConfig(tc.s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("catalogConfig(%+v)\n got %+v\nwant %+v", tc.s, got, tc.want)
			}
		})
	}
}

func TestConsulConfig(t *testing.T) {
	with := func(f func(*consul.Config)) consul.Config {
		c := consul.DefaultConfig()
		c.Address = "consul:8500"
		f(&c)
		return c
	}
	tls := &consul.TLSConfig{ServerName: "consul.internal", CAFile: "/p/ca.pem", CertFile: "/p/c.pem", KeyFile: "/p/k.pem"}
	for _, tc := range []struct {
		name string
		s    Settings
		want consul.Config
	}{
		{"address only", Settings{Address: "consul:8500"}, with(func(*consul.Config) {})},
		{"keep on close, as the bridge opens it",
			Settings{Address: "consul:8500", KeepOnClose: true},
			with(func(c *consul.Config) { c.DeregisterOnClose = false })},
		{"datacenter, token, TLS and check TTL",
			Settings{Address: "consul:8500", Datacenter: "dc1", Token: "secret", TLS: tls, CheckTTL: 5 * time.Second},
			with(func(c *consul.Config) {
				c.Datacenter, c.Token, c.Scheme, c.TLS, c.CheckTTL = "dc1", "secret", "https", *tls, 5*time.Second
			})},
		{"ZooKeeper settings ignored",
			Settings{Address: "consul:8500", BasePath: "/services", SessionTimeout: time.Minute},
			with(func(*consul.Config) {})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := consulConfig(tc.s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("consulConfig(%+v)\n got %+v\nwant %+v", tc.s, got, tc.want)
			}
		})
	}
}
