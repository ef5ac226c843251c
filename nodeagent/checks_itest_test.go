package nodeagent_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/schema"
)

// TestAppCheckOnRealRegistries: a provider active on ZooKeeper and Consul
// whose app starts failing its HTTP check is withdrawn from ZooKeeper,
// critical with the check's output in Consul, and critical in its health
// report naming the check; when the app passes again it is back in both.
func TestAppCheckOnRealRegistries(t *testing.T) {
	env := itest.New(t)
	ordersSvc := env.Service("orders")
	var failing atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "db down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("UP"))
	}))
	defer app.Close()
	cfg := env.AgentConfig(t, itest.Provider("node-1", ordersSvc))
	cfg.Services[0].Check = nodeagent.Check{HTTP: app.URL + "/health", Body: "UP", Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond}
	a := env.StartAgentWith(t, cfg)
	orders := a.ServiceID(ordersSvc)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	url, digest := env.ConsulPackage(t)
	env.Send(t, a.Install("c1", "consul", url, digest))
	mustDone(t, env.AwaitAck(t, a.Node, "c1"))
	env.Send(t, a.Activate("c2", "consul"))
	mustDone(t, env.AwaitAck(t, a.Node, "c2"))
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)

	since := time.Now()
	failing.Store(true)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, false)
	env.AwaitRegistered(t, "consul", ordersSvc, orders, false)
	cc, err := api.NewClient(&api.Config{Address: env.Consul})
	if err != nil {
		t.Fatal(err)
	}
	checks, _, err := cc.Health().Checks(ordersSvc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[0].Status != api.HealthCritical || !strings.Contains(checks[0].Output, "503 Service Unavailable") {
		t.Fatalf("Consul's check of the failing instance: %+v", checks)
	}
	env.AwaitHealth(t, a.Node, "consul critical naming the app check", func(h schema.Health) bool {
		if h.ObservedAt.Before(since) || len(h.Checks) != 1 || h.Checks[0].Status != schema.HealthCritical {
			return false
		}
		for _, i := range h.Interfaces {
			if i.Name == "consul" && i.Status == schema.HealthCritical && strings.Contains(i.Detail, "app check failing (1): "+orders+" (http)") {
				return true
			}
		}
		return false
	})

	failing.Store(false)
	env.AwaitRegistered(t, "zookeeper", ordersSvc, orders, true)
	env.AwaitRegistered(t, "consul", ordersSvc, orders, true)
	env.AwaitHealth(t, a.Node, "consul passing again", func(h schema.Health) bool {
		for _, i := range h.Interfaces {
			if i.Name == "consul" && i.Status == schema.HealthPassing && len(h.Checks) == 1 && h.Checks[0].Status == schema.HealthPassing {
				return true
			}
		}
		return false
	})
}
