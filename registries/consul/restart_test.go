package consul_test

import (
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/registrytest"
)

// TestAgentRestart kills a private Consul under a client with registrations
// and a watch: while it is down operations fail with the retriable error;
// once it is back every registration — also one attempted while it was
// down — is passing again and the watch follows.
func TestAgentRestart(t *testing.T) {
	p := servers.StartPrivate(t, servers.Consul)
	cfg := consul.DefaultConfig()
	cfg.Address = p.Addr()
	cfg.CheckTTL = 3 * time.Second
	c := newClient(t, cfg)
	registrytest.ServerRestart(t, c, func() { p.Kill(t) }, func() { p.Start(t) })
}
