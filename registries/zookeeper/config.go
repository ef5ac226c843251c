package zookeeper

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config holds the client's settings. Start from DefaultConfig.
type Config struct {
	// Servers are the ZooKeeper ensemble's host:port addresses. Required.
	Servers []string
	// BasePath is the Curator discovery base path; "/services" by default,
	// as Spring Cloud Zookeeper uses.
	BasePath string
	// SessionTimeout is the session timeout asked of the server (10s).
	SessionTimeout time.Duration
	// ReconnectWait bounds how long an operation waits for a lost
	// connection to come back before it returns registries.ErrUnavailable
	// (2s); the operation's context can end the wait sooner.
	ReconnectWait time.Duration
	// PayloadClass is the Java class named in the payload's "@class" (Spring
	// Cloud Zookeeper's ZookeeperInstance by default); "" writes none.
	PayloadClass string
	// ACL guards created znodes; world:anyone:all when empty.
	ACL []zk.ACL
	// Dialer opens connections to the servers; net.DialTimeout when nil.
	Dialer zk.Dialer
}

// DefaultConfig returns the settings for the ensemble at servers.
func DefaultConfig(servers ...string) Config {
	return Config{
		Servers:        servers,
		BasePath:       "/services",
		SessionTimeout: 10 * time.Second,
		ReconnectWait:  2 * time.Second,
		PayloadClass:   "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
	}
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("zookeeper: invalid config")

func (c *Config) validate() error {
	if len(c.Servers) == 0 {
		return fmt.Errorf("%w: no Servers", ErrConfig)
	}
	for _, s := range c.Servers {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("%w: empty server address", ErrConfig)
		}
	}
	if !strings.HasPrefix(c.BasePath, "/") || c.BasePath == "/" || path.Clean(c.BasePath) != c.BasePath {
		return fmt.Errorf("%w: BasePath %q must be an absolute, clean path below /", ErrConfig, c.BasePath)
	}
	if c.SessionTimeout < time.Second {
		return fmt.Errorf("%w: SessionTimeout %v is below 1s", ErrConfig, c.SessionTimeout)
	}
	if c.ReconnectWait <= 0 {
		return fmt.Errorf("%w: ReconnectWait %v must be positive", ErrConfig, c.ReconnectWait)
	}
	if len(c.ACL) == 0 {
		c.ACL = zk.WorldACL(zk.PermAll)
	}
	return nil
}
