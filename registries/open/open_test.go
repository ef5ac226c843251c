package open_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/etcd"
	"github.com/regshift/regshift/registries/eureka"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind registries.Kind
		s    open.Settings
		is   error
		says string
	}{
		{"unknown kind", "nacos", open.Settings{Address: "nacos:8848"}, open.ErrUnknownKind,
			`unknown registry kind "nacos"; known kinds: zookeeper, consul, etcd, eureka`},
		{"no kind", "", open.Settings{Address: "zk1:2181"}, open.ErrUnknownKind, `unknown registry kind ""`},
		{"zookeeper without address", registries.KindZooKeeper, open.Settings{}, zookeeper.ErrConfig, "no servers"},
		{"zookeeper bad server", registries.KindZooKeeper, open.Settings{Address: "zk1:2181,zk2:x/services"},
			zookeeper.ErrConfig, `server 2 "zk2:x": port "x"`},
		{"zookeeper base paths differ", registries.KindZooKeeper, open.Settings{Address: "zk1:2181/a", BasePath: "/b"},
			zookeeper.ErrConfig, "give it in one place"},
		{"zookeeper bad base path setting", registries.KindZooKeeper, open.Settings{Address: "zk1:2181", BasePath: "services"},
			zookeeper.ErrConfig, `BasePath "services"`},
		{"consul without address", registries.KindConsul, open.Settings{}, consul.ErrConfig, `Address "" must be host:port`},
		{"consul URL", registries.KindConsul, open.Settings{Address: "http://consul:8500"}, consul.ErrConfig, "must be host:port"},
		{"consul mirrors on a bad node", registries.KindConsul, open.Settings{Address: "consul:8500", Mirrors: true, MirrorNode: "a.b"},
			consul.ErrConfig, `Node "a.b" must be a DNS label`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := open.Open(tc.kind, tc.s, registrytest.Logger(t))
			if err == nil {
				_ = r.Close()
				t.Fatalf("Open(%q, %+v) succeeded; want an error", tc.kind, tc.s)
			}
			if r != nil {
				t.Errorf("Open returned a non-nil registry %#v with its error", r)
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Open(%q, %+v) = %v; want an error wrapping %v that says %q", tc.kind, tc.s, err, tc.is, tc.says)
			}
		})
	}
}

// TestOpenEachKind opens every kind, with and without Mirrors, at an
// address where nothing answers: Open does not wait for the registry, and
// returns that kind's adapter (Consul's mirror store with Mirrors;
// ZooKeeper ignores it).
func TestOpenEachKind(t *testing.T) {
	for _, kind := range registries.Kinds() {
		for _, mirrors := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s mirrors=%v", kind, mirrors), func(t *testing.T) {
				r, err := open.Open(kind, open.Settings{Address: servers.ClosedAddr(t), Mirrors: mirrors}, registrytest.Logger(t))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var ok bool
				switch {
				case kind == registries.KindZooKeeper:
					_, ok = r.(*zookeeper.Client)
				case kind == registries.KindConsul && mirrors:
					_, ok = r.(*consul.Catalog)
				case kind == registries.KindConsul:
					_, ok = r.(*consul.Client)
				case kind == registries.KindEtcd:
					_, ok = r.(*etcd.Client)
				case kind == registries.KindEureka:
					_, ok = r.(*eureka.Client)
				}
				if !ok {
					t.Errorf("Open(%q, Mirrors: %v) returned a %T", kind, mirrors, r)
				}
			})
		}
	}
}
