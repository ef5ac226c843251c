package servers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Etcd is the etcd server (a single member of its own cluster).
const Etcd Kind = "etcd"

// EtcdEndpoints returns the configured etcd client addresses
// (REGSHIFT_ETCD_ENDPOINTS, comma-separated, or 127.0.0.1 and
// REGSHIFT_ETCD_PORT, default 2379) without probing them.
func EtcdEndpoints() []string {
	return list("REGSHIFT_ETCD_ENDPOINTS", "127.0.0.1:"+envOr("REGSHIFT_ETCD_PORT", "2379"))
}

// RequireEtcd returns the etcd client addresses once each reported itself
// healthy, or ends the test (see the package doc).
func RequireEtcd(t testing.TB) []string {
	t.Helper()
	eps := EtcdEndpoints()
	need(t, Etcd, strings.Join(eps, ","), "REGSHIFT_ETCD_ENDPOINTS", ProbeEtcd(context.Background(), eps))
	return eps
}

// ProbeEtcd asks every member's /health endpoint, which answers
// {"health":"true"} once the member has a leader and serves reads.
func ProbeEtcd(ctx context.Context, endpoints []string) error {
	return probeEach(ctx, endpoints, etcdHealth)
}

func etcdHealth(ctx context.Context, addr string) error {
	code, b, err := httpGet(ctx, "http://"+addr+"/health")
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("/health answered %d %q: %w", code, b, err)
	}
	if h.Health != "true" {
		return errors.New("/health: unhealthy: " + h.Reason)
	}
	return nil
}
