package servers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// Eureka is a Spring Cloud Netflix Eureka server (tools/eureka), started
// by `make up` on REGSHIFT_EUREKA_PORT (8761).
const Eureka Kind = "eureka"

// EurekaAddr returns the configured Eureka server's host:port without
// probing: REGSHIFT_EUREKA_ADDR, or 127.0.0.1 and REGSHIFT_EUREKA_PORT
// (8761). The REST API is at /eureka on it.
func EurekaAddr() string {
	return envOr("REGSHIFT_EUREKA_ADDR", "127.0.0.1:"+envOr("REGSHIFT_EUREKA_PORT", "8761"))
}

// RequireEureka returns the Eureka server's host:port once it answers a
// registry read (see ProbeEureka), or ends the test (see the package doc).
func RequireEureka(t testing.TB) string {
	t.Helper()
	addr := EurekaAddr()
	need(t, Eureka, addr, "REGSHIFT_EUREKA_ADDR", ProbeEureka(context.Background(), addr))
	return addr
}

// ProbeEureka reads the whole registry (GET /eureka/apps, as JSON) and
// expects 200 with Eureka's applications object: what scripts/services.sh
// waits for too.
func ProbeEureka(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/eureka/apps", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReachable, err)
	}
	defer resp.Body.Close()
	var body struct {
		Applications *json.RawMessage `json:"applications"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.Applications == nil {
		return fmt.Errorf("%w: /eureka/apps answered %d %.80q: not a Eureka server that serves reads", ErrNotReachable, resp.StatusCode, b)
	}
	return nil
}

// eurekaPrivateEnv sets a private Eureka's port.
func eurekaPrivateEnv(ports []string) []string {
	return []string{"REGSHIFT_EUREKA_PORT=" + ports[0]}
}

// eurekaJar is the server `make deps` builds.
func eurekaJar(deps string) string { return filepath.Join(deps, "eureka", "eureka-server.jar") }
