package address

import (
	"fmt"
	"strings"

	"github.com/regshift/regshift/registries"
)

// Consul checks a Consul agent's HTTP(S) API address as the consul adapter
// takes it: host:port (the scheme is a setting of its own, so a URL is
// refused), with a host and a port in 1-65535. Errors quote the address and
// say the problem.
func Consul(addr string) error {
	if strings.Contains(addr, "://") {
		return fmt.Errorf("%q: a URL; want host:port (the scheme is a setting of its own)", addr)
	}
	if err := checkServer(strings.TrimSpace(addr)); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	return nil
}

// Check checks addr for a registry of kind; an unknown kind is an error.
func Check(kind registries.Kind, addr string) error {
	switch kind {
	case registries.KindZooKeeper:
		_, _, err := ZooKeeper(addr)
		return err
	case registries.KindConsul:
		return Consul(addr)
	case registries.KindEtcd:
		_, _, err := Etcd(addr)
		return err
	case registries.KindEureka:
		return Eureka(addr)
	}
	return fmt.Errorf("no address format for registry kind %q", kind)
}
