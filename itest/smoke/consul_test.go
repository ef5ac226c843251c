package smoke

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/itest/servers"
)

// TestConsulRegisterAndHealth registers a service with a TTL check through the
// agent API and checks that passing-only health queries follow the check.
func TestConsulRegisterAndHealth(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Address = servers.RequireConsul(t)
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	name := fmt.Sprintf("regshift-smoke-%d", time.Now().UnixNano())
	id := name + "-1"
	reg := &api.AgentServiceRegistration{
		ID: id, Name: name, Address: "127.0.0.1", Port: 8080,
		Tags: []string{"smoke"}, Meta: map[string]string{"regshift-node": "smoke"},
		Check: &api.AgentServiceCheck{
			CheckID: id + "-ttl", TTL: "30s", Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: "1m",
		},
	}
	if err := client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	t.Cleanup(func() { _ = client.Agent().ServiceDeregister(id) })

	entries := passing(t, client, name, 1)
	svc := entries[0].Service
	if svc.ID != id || svc.Address != "127.0.0.1" || svc.Port != 8080 || svc.Meta["regshift-node"] != "smoke" {
		t.Fatalf("health query returned %+v, want the registered instance", svc)
	}

	if err := client.Agent().UpdateTTL(id+"-ttl", "smoke: failing on purpose", api.HealthCritical); err != nil {
		t.Fatalf("update ttl: %v", err)
	}
	passing(t, client, name, 0)

	if err := client.Agent().ServiceDeregister(id); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	all, _, err := client.Health().Service(name, "", false, nil)
	if err != nil {
		t.Fatalf("health query: %v", err)
	}
	if len(all) != 0 {
		t.Fatalf("after deregister %d instances remain", len(all))
	}
}

// passing polls the passing-only health query with a blocking index until it
// returns want instances, or fails after 10s.
func passing(t *testing.T, c *api.Client, name string, want int) []*api.ServiceEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var idx uint64
	for {
		entries, meta, err := c.Health().Service(name, "", true, &api.QueryOptions{WaitIndex: idx, WaitTime: time.Second})
		if err != nil {
			t.Fatalf("health query %s: %v", name, err)
		}
		if len(entries) == want {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: %d passing instances after 10s, want %d", name, len(entries), want)
		}
		idx = meta.LastIndex
	}
}
