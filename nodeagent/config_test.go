package nodeagent

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigExample(t *testing.T) {
	c, err := LoadConfig("testdata/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if c.Node != "node-1" || c.Role != RoleBoth || s.ID != "orders-node-1" || s.Address != "127.0.0.1" ||
		s.Check.Interval != 5*time.Second || c.HealthInterval != 5*time.Second || !*c.DeregisterOnShutdown ||
		c.Kafka.TopicPrefix != "regshift." || c.Consumes[0] != "payments" {
		t.Fatalf("loaded %+v", c)
	}
}

// TestConfigErrorsNameTheField breaks one field of the example at a time.
func TestConfigErrorsNameTheField(t *testing.T) {
	example, err := os.ReadFile("testdata/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(example)
	tests := []struct{ old, new, field string }{
		{"node: node-1", "node: 'node 1'", "node"},
		{"role: both", "role: router", "role"},
		{"stateDir: /var/lib/regshift-agent", "stateDir: relative/dir", "stateDir"},
		{"  type: zookeeper", "  type: nacos", "startInterface.type"},
		{"  address: 127.0.0.1:2181", "  address: nohost", "startInterface.address"},
		{"    port: 8080", "    port: 70000", "services[0].port"},
		{"  - name: orders", "  - name: 'or/ders'", "services[0].name"},
		{"      timeout: 1s", "      timeout: 9s", "services[0].check.timeout"},
		{"      http: http://127.0.0.1:8080/health", "      http: ftp://x", "services[0].check.http"},
		{"consumes: [payments]", "consumes: []", "consumes"},
		{"consumes: [payments]", "consumes: ['pay ments']", "consumes[0]"},
		{"  brokers: [127.0.0.1:9092]", "  brokers: [kafka]", "kafka.brokers[0]"},
		{"  keysDir: /etc/regshift/keys", "  keysDir: keys", "trust.keysDir"},
		{"  keysDir: /etc/regshift/keys", "  keysDir: /etc/regshift/keys\n  maxClockSkew: 0s", "trust.maxClockSkew"},
		{"  signingKey: /etc/regshift/identity/node-1.key", "  signingKey: node-1.key", "identity.signingKey"},
		{"identity:\n  signingKey: /etc/regshift/identity/node-1.key", "identity: {}", "identity.signingKey"},
		{"  signingKey: /etc/regshift/identity/node-1.key", "  signingKey: /etc/regshift/identity/node-2.key", "identity.signingKey"},
		{"  signingKey: /etc/regshift/identity/node-1.key", "  signingKey: /etc/regshift/identity/node-1.pub", "identity.signingKey"},
		{"node: node-1", "node: " + strings.Repeat("n", 65), "identity.signingKey"}, // a valid node id, too long for a key id
		{"  listen: 127.0.0.1:7070", "  listen: 0.0.0.0:7070", "api.listen"},
		{"  listen: 127.0.0.1:7070", "  listen: unix:agent.sock", "api.listen"},
		{"api:", "parityThreshold: 1.5\napi:", "parityThreshold"},
		{"api:", "fetch: {timeout: 10s}\napi:", "fetch.timeout"},
		{"api:", "fetch: {connectTimeout: 9s}\napi:", "fetch.connectTimeout"},
		{"api:", "fetch: {fileRoot: packages}\napi:", "fetch.fileRoot"},
		{"api:", "kafka2: {}\napi:", "field kafka2 not found"},
		{"    port: 8080", "    port: eighty", "line 12"},
		{"consumes: [payments]", "consumes: [" + strings.Repeat("payments, ", maxServices) + "payments]", "services"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if !strings.Contains(doc, tt.old) {
				t.Fatalf("example lacks %q", tt.old)
			}
			_, err := ParseConfig([]byte(strings.Replace(doc, tt.old, tt.new, 1)))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestConfigRoles(t *testing.T) {
	base := "node: n\nstateDir: /s\ntrust: {keysDir: /k}\nidentity: {signingKey: /k/n.key}\n"
	tests := []struct {
		doc, wantErr string
	}{
		{base + "role: provider\nservices: [{name: a, port: 1}]\n", ""},
		{base + "role: consumer\nconsumes: [a]\n", ""},
		{base + "role: provider\n", "services"},
		{base + "role: consumer\nconsumes: [a]\nservices: [{name: a, port: 1}]\n", "services"},
		{base + "role: provider\nservices: [{name: a, port: 1}, {name: a, port: 2}]\n", "services[1].id"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(tt.doc))
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: got %v, want %q", tt.doc, err, tt.wantErr)
		}
	}
}
