//go:build containers

package containers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/containers"
	"github.com/regshift/regshift/schema"
)

const service = "orders"

// fleet is the Stack's coordinator and 3 provider + 3 consumer agents, each
// in its own container, providers registered in ZooKeeper.
type fleet struct {
	s         *containers.Stack
	co        *containers.Coordinator
	specs     []containers.AgentSpec
	agents    map[string]*containers.Agent
	providers []string // service ids
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{s: containers.StartStack(t), agents: map[string]*containers.Agent{}}
	for i := 1; i <= 3; i++ {
		f.specs = append(f.specs,
			containers.AgentSpec{Node: fmt.Sprintf("p%d", i), Role: "provider", Offers: []string{service}},
			containers.AgentSpec{Node: fmt.Sprintf("c%d", i), Role: "consumer", Consumes: []string{service}})
	}
	for _, spec := range f.specs {
		f.s.Enrol(t, spec.Node) // before the coordinator starts: it reads the node keys then
	}
	f.co = f.s.StartCoordinator(t, "coord-1")
	for _, spec := range f.specs {
		f.agents[spec.Node] = f.s.StartAgent(t, spec)
		if spec.Role == "provider" {
			f.providers = append(f.providers, containers.ServiceID(service, spec.Node))
		}
	}
	slices.Sort(f.providers)
	f.awaitInstances(t, "zookeeper", f.providers)
	return f
}

// create publishes a create-rollout request for the whole fleet.
func (f *fleet) create(t *testing.T, id string, edit func(*schema.Plan)) {
	t.Helper()
	p := f.s.Plan(f.specs)
	if edit != nil {
		edit(&p)
	}
	f.s.Request(t, &schema.CreateRollout{RequestHeader: containers.RequestHeader("req-"+id, id), Plan: p})
}

// awaitInstances waits until the registry holds exactly ids for the service.
func (f *fleet) awaitInstances(t *testing.T, registry string, ids []string) {
	t.Helper()
	reg := f.s.ZK
	if registry == "consul" {
		reg = f.s.Cons
	}
	itest.Eventually(t, time.Minute, fmt.Sprintf("%s holds %v", registry, ids), func() error {
		got, err := containers.Instances(context.Background(), reg, service)
		if err != nil {
			return err
		}
		if !slices.Equal(got, ids) && !(len(got) == 0 && len(ids) == 0) {
			return fmt.Errorf("%s holds %v", registry, got)
		}
		return nil
	})
}

// awaitResolvedVia waits until every consumer resolves all providers through iface.
func (f *fleet) awaitResolvedVia(t *testing.T, iface string) {
	t.Helper()
	for _, spec := range f.specs {
		if spec.Role != "consumer" {
			continue
		}
		cl := f.agents[spec.Node].Client(t)
		itest.Eventually(t, 30*time.Second, spec.Node+" resolves via "+iface, func() error {
			res, err := cl.Resolve(context.Background(), service)
			if err != nil {
				return err
			}
			if res.Via != iface || len(res.Endpoints) != len(f.providers) {
				return fmt.Errorf("resolves %d endpoints via %s", len(res.Endpoints), res.Via)
			}
			return nil
		})
	}
}

// TestHappyPath migrates 3 provider and 3 consumer containers from
// ZooKeeper to Consul through automatic finalize.
func TestHappyPath(t *testing.T) {
	start := time.Now()
	f := startFleet(t)
	t.Logf("stack and fleet up in %s", time.Since(start).Round(time.Millisecond))

	f.create(t, "ro-happy", nil)
	r := f.co.AwaitPhase(t, "ro-happy", schema.PhaseFinalized, 3*time.Minute)
	t.Logf("finalized %s after the request", time.Since(r.Created).Round(time.Millisecond))

	f.awaitInstances(t, "consul", f.providers)
	f.awaitInstances(t, "zookeeper", nil)
	f.awaitResolvedVia(t, "consul")
}
