package open

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/etcd"
	"github.com/regshift/regshift/registries/eureka"
	"github.com/regshift/regshift/registries/zookeeper"
)

// ErrUnknownKind is wrapped by the error Open returns for a kind it cannot
// open; the message names the kind and the known ones.
var ErrUnknownKind = errors.New("unknown registry kind")

// Settings say where a registry is and how to talk to it. A field names the
// kinds that read it; the others ignore it. A zero field takes the adapter's
// default (see zookeeper.DefaultConfig and consul.DefaultConfig).
type Settings struct {
	// Address is where the registry answers. Required.
	//   - ZooKeeper: "host:port[,host:port...][/base/path]", the ensemble and
	//     optionally the Curator base path (see zookeeper.ParseAddress).
	//   - Consul: the agent's HTTP(S) API, "host:port".
	Address string
	// BasePath (ZooKeeper) is the Curator discovery base path. It may be
	// given here or at the end of Address; when both give one they must be
	// the same, else Open fails. "/services" when neither does.
	BasePath string
	// Datacenter (Consul) to query; the agent's own when empty.
	Datacenter string
	// Token (Consul) is the ACL token sent with every request; none when
	// empty.
	Token string
	// TLS (Consul), when set, makes the client talk HTTPS to the agent with
	// these CA and client certificate files (or PEM bytes).
	TLS *consul.TLSConfig
	// SessionTimeout (ZooKeeper) asked of the server; 10s when zero.
	SessionTimeout time.Duration
	// CheckTTL (Consul) of each instance's health check; 15s when zero.
	CheckTTL time.Duration
	// KeepOnClose (Consul) leaves this client's registrations in the
	// registry when it closes, as the coordinator's bridge needs so that its
	// mirrors survive a restart; they then live until their TTL check has
	// been critical for a minute, unless a new client takes them over. By
	// default Close removes them. ZooKeeper registrations are ephemeral:
	// they end with the client's session whatever KeepOnClose says.
	KeepOnClose bool
	// Mirrors (Consul) makes writes go to catalog entries on a node of
	// their own (MirrorNode), not agent services: what the coordinator's
	// bridge uses. The entries have no health check and nothing to keep
	// alive; they outlive Close whatever KeepOnClose says and stay until a
	// writer with the same node deletes them (see consul.Catalog).
	// ZooKeeper ignores it: its ephemeral nodes already live on one session,
	// whose liveness costs the same for one instance or 10,000.
	Mirrors bool
	// MirrorNode (Consul, with Mirrors) is the catalog node of the entries;
	// "regshift-mirrors" when empty.
	MirrorNode string
}

// Open validates s for kind and returns a client of that registry: a
// *zookeeper.Client, or for Consul a *consul.Client, or a *consul.Catalog
// when s.Mirrors is set. Like the adapters' New, it does not wait for the
// registry to answer: a client of a registry that is down is made at once
// and its operations return registries.ErrUnavailable. Errors in s wrap
// zookeeper.ErrConfig or consul.ErrConfig; an unknown kind wraps
// ErrUnknownKind. A nil logger discards logs.
func Open(kind registries.Kind, s Settings, log *slog.Logger) (registries.Registry, error) {
	switch kind {
	case registries.KindZooKeeper:
		cfg, err := zookeeperConfig(s)
		if err != nil {
			return nil, err
		}
		c, err := zookeeper.New(cfg, log)
		if err != nil {
			return nil, err
		}
		return c, nil
	case registries.KindConsul:
		if s.Mirrors {
			c, err := consul.NewCatalog(catalogConfig(s), log)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
		c, err := consul.New(consulConfig(s), log)
		if err != nil {
			return nil, err
		}
		return c, nil
	case registries.KindEureka:
		c, err := eureka.New(eurekaConfig(s), log)
		if err != nil {
			return nil, err
		}
		return c, nil
	case registries.KindEtcd:
		cfg, err := etcdConfig(s)
		if err != nil {
			return nil, err
		}
		c, err := etcd.New(cfg, log)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	known := make([]string, 0, len(registries.Kinds()))
	for _, k := range registries.Kinds() {
		known = append(known, string(k))
	}
	return nil, fmt.Errorf("%w %q; known kinds: %s", ErrUnknownKind, kind, strings.Join(known, ", "))
}

// zookeeperConfig turns s into the ZooKeeper adapter's settings.
func zookeeperConfig(s Settings) (zookeeper.Config, error) {
	servers, base, err := zookeeper.ParseAddress(s.Address)
	if err != nil {
		return zookeeper.Config{}, err
	}
	if base != "" && s.BasePath != "" && base != s.BasePath {
		return zookeeper.Config{}, fmt.Errorf("%w: the address %q names base path %q but BasePath is %q; give it in one place",
			zookeeper.ErrConfig, s.Address, base, s.BasePath)
	}
	cfg := zookeeper.DefaultConfig(servers...)
	switch {
	case s.BasePath != "":
		cfg.BasePath = s.BasePath
	case base != "":
		cfg.BasePath = base
	}
	if s.SessionTimeout != 0 {
		cfg.SessionTimeout = s.SessionTimeout
	}
	return cfg, nil
}

// etcdConfig turns s into the etcd adapter's settings: the prefix from
// BasePath or the end of Address (one place, as for ZooKeeper), the lease
// TTL from SessionTimeout. Mirrors is ignored: registrations live on the
// client's lease, whose keepalive costs the same for one or 10,000.
func etcdConfig(s Settings) (etcd.Config, error) {
	eps, prefix, err := etcd.ParseAddress(s.Address)
	if err != nil {
		return etcd.Config{}, err
	}
	if prefix != "" && s.BasePath != "" && prefix != s.BasePath {
		return etcd.Config{}, fmt.Errorf("%w: the address %q names prefix %q but BasePath is %q; give it in one place",
			etcd.ErrConfig, s.Address, prefix, s.BasePath)
	}
	cfg := etcd.DefaultConfig(eps...)
	switch {
	case s.BasePath != "":
		cfg.Prefix = s.BasePath
	case prefix != "":
		cfg.Prefix = prefix
	}
	if s.SessionTimeout != 0 {
		cfg.LeaseTTL = s.SessionTimeout
	}
	cfg.RevokeOnClose = !s.KeepOnClose
	return cfg, nil
}

// eurekaConfig turns s into the Eureka adapter's settings; eureka.New
// validates them. CheckTTL is the lease each instance is registered with
// (renewed every third of it, at least every second). Mirrors is ignored:
// the bridge's mirrors live while it renews them.
func eurekaConfig(s Settings) eureka.Config {
	cfg := eureka.DefaultConfig(s.Address)
	cfg.DeregisterOnClose = !s.KeepOnClose
	if s.CheckTTL > 0 {
		cfg.LeaseDuration = s.CheckTTL.Truncate(time.Second)
		cfg.RenewalInterval = max(time.Second, (cfg.LeaseDuration / 3).Truncate(time.Second))
	}
	return cfg
}

// consulConfig turns s into the Consul adapter's settings; consul.New
// validates them.
func consulConfig(s Settings) consul.Config {
	cfg := consul.DefaultConfig()
	cfg.Address, cfg.Datacenter, cfg.Token = s.Address, s.Datacenter, s.Token
	if s.TLS != nil {
		cfg.Scheme, cfg.TLS = "https", *s.TLS
	}
	if s.CheckTTL != 0 {
		cfg.CheckTTL = s.CheckTTL
	}
	cfg.DeregisterOnClose = !s.KeepOnClose
	return cfg
}

// catalogConfig turns s into the settings of Consul's mirror store;
// consul.NewCatalog validates them.
func catalogConfig(s Settings) consul.CatalogConfig {
	cfg := consul.DefaultCatalogConfig()
	cfg.Config = consulConfig(s)
	if s.MirrorNode != "" {
		cfg.Node = s.MirrorNode
	}
	return cfg
}
