package registries

import (
	"slices"
	"strings"
)

// Kind names a kind of service registry that regshift opens from an address
// and migrates a fleet between. Its values are the words plans, agent
// configs and interface packages use ("zookeeper", "consul").
type Kind string

// The kinds regshift supports.
const (
	// KindZooKeeper is ZooKeeper in Apache Curator's x-discovery layout
	// (package registries/zookeeper).
	KindZooKeeper Kind = "zookeeper"
	// KindConsul is Consul through its agent API (package registries/consul).
	KindConsul Kind = "consul"
	// KindEtcd is etcd v3 in the layout of its naming/endpoints package
	// (package registries/etcd).
	KindEtcd Kind = "etcd"
	// KindEureka is a Netflix Eureka server through its REST API (package
	// registries/eureka).
	KindEureka Kind = "eureka"
)

// Kinds returns every supported kind, in a fixed order.
func Kinds() []Kind { return []Kind{KindZooKeeper, KindConsul, KindEtcd, KindEureka} }

// KindNames lists the kinds for an error message: "zookeeper, consul, etcd or eureka".
func KindNames() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds(), k) }
