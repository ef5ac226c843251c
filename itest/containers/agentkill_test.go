//go:build containers

package containers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

func nodeOf(r coordinator.Rollout, id string) *coordinator.Node {
	return r.Node(id)
}

// TestAgentKilledDuringInstall kills an agent container while it fetches
// the package (served slowly on purpose), starts it again, and checks that
// the rollout still finalizes with every provider in Consul only.
func TestAgentKilledDuringInstall(t *testing.T) {
	f := startFleet(t)
	pkg, err := os.ReadFile(f.s.ConsulPackagePath())
	if err != nil {
		t.Fatal(err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second): // every install takes 3 s
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(pkg)
	}))
	t.Cleanup(slow.Close)

	f.create(t, "ro-agent-kill", func(p *schema.Plan) { p.To.Package.URL = slow.URL + "/consul.tgz" })
	// p2 and p3 install in the second wave; kill p3 while its install is pending.
	f.co.AwaitRollout(t, "ro-agent-kill", time.Minute, "p3 installing", func(r coordinator.Rollout) error {
		if n := nodeOf(r, "p3"); n == nil || n.Pending == nil || n.Pending.Command.Kind != "install" {
			return fmt.Errorf("p3 not installing (phase %s wave %d)", r.Phase, r.Wave+1)
		}
		return nil
	})
	p3 := f.agents["p3"]
	p3.Kill(t)
	time.Sleep(time.Second) // down for a while, as a crashed host is
	p3.Start(t)

	f.co.AwaitPhase(t, "ro-agent-kill", schema.PhaseFinalized, 3*time.Minute)
	f.awaitInstances(t, "consul", f.providers)
	f.awaitInstances(t, "zookeeper", nil)
	f.awaitResolvedVia(t, "consul")
}
