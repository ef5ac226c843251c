package zookeeper

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regshift/regshift/registries"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestEncodeGolden pins the exact JSON regshift writes, in Curator's
// ServiceInstance shape, so a change that Java readers would see shows up
// in review. Regenerate with -update.
func TestEncodeGolden(t *testing.T) {
	inst := registries.Instance{
		Service: "orders", ID: "0f6c2a9e-5b1d-4d7a-9a51-1f0c2b3d4e5f", Address: "10.1.2.3", Port: 8080,
		Tags: []string{"v2", "canary"}, Metadata: map[string]string{"zone": "eu-1", "version": "2.4.1"},
	}
	got, err := encode(inst, "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance", time.UnixMilli(1764115200123))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "regshift-instance.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Fatalf("encoded\n%s\nwant (%s)\n%s", got, golden, want)
	}
	// Curator's compatible mode: exactly the nine ServiceInstance fields.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(got, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	want9 := []string{"address", "id", "name", "payload", "port", "registrationTimeUTC", "serviceType", "sslPort", "uriSpec"}
	if !sameStrings(names, want9) {
		t.Fatalf("fields %v, want %v", names, want9)
	}
	back, ok, err := decode("orders", inst.ID, got)
	if err != nil || !ok || !back.Equal(inst) {
		t.Fatalf("round trip: %+v ok=%v err=%v, want %+v", back, ok, err, inst)
	}
}

func sameStrings(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

// TestDecodeJavaWriters reads znode data as Curator and Spring Cloud
// Zookeeper write it (testdata/*.json, shaped after their serializers).
func TestDecodeJavaWriters(t *testing.T) {
	cases := []struct {
		file    string
		want    registries.Instance
		enabled bool
	}{
		{"spring-cloud-zookeeper.json", registries.Instance{Service: "payments", ID: "7d3b", Address: "192.168.10.7", Port: 9090,
			Metadata: map[string]string{"instance_status": "UP", "zone": "b"}}, true},
		{"curator-string-payload.json", registries.Instance{Service: "test", ID: "ca2f", Address: "10.20.30.40", Port: 1234}, true},
		{"curator-ssl-only.json", registries.Instance{Service: "secure", ID: "s1", Address: "h.example", Port: 8443}, true},
		{"curator-disabled.json", registries.Instance{Service: "off", ID: "d1", Address: "10.0.0.9", Port: 80}, false},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, enabled, err := decode(tc.want.Service, tc.want.ID, data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) || enabled != tc.enabled {
				t.Fatalf("decoded %+v enabled=%v, want %+v enabled=%v", got, enabled, tc.want, tc.enabled)
			}
		})
	}
	if _, _, err := decode("x", "y", []byte("not json")); err == nil {
		t.Fatal("decode accepted non-JSON data")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"nested base path", func(c *Config) { c.BasePath = "/a/b/services" }, true},
		{"no servers", func(c *Config) { c.Servers = nil }, false},
		{"blank server", func(c *Config) { c.Servers = []string{" "} }, false},
		{"relative base path", func(c *Config) { c.BasePath = "services" }, false},
		{"root base path", func(c *Config) { c.BasePath = "/" }, false},
		{"unclean base path", func(c *Config) { c.BasePath = "/a//b/" }, false},
		{"short session", func(c *Config) { c.SessionTimeout = 10 * time.Millisecond }, false},
		{"no reconnect wait", func(c *Config) { c.ReconnectWait = 0 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig("127.0.0.1:1")
			tc.mod(&cfg)
			err := cfg.validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
