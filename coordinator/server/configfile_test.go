package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
)

// configDir copies testdata/coordinator.yaml into a temp folder beside the
// files it names, with edit applied to its text, and returns its path.
func configDir(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, kp := range []struct{ dir, id string }{{"keys", "coordinator"}, {"operators", "alice"}, {"nodes", "p1"}} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, kp.dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := events.WriteKeyPair(filepath.Join(dir, kp.dir), kp.id, priv); err != nil {
			t.Fatal(err)
		}
	}
	// The operator and node keyrings hold public keys only.
	for _, priv := range []string{"operators/alice.key", "nodes/p1.key"} {
		if err := os.Remove(filepath.Join(dir, priv)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "packages"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kafka.password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "coordinator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "coordinator.yaml")
	if err := os.WriteFile(file, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestLoadConfigReadsEveryField(t *testing.T) {
	file := configDir(t, func(s string) string { return s })
	c, err := server.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(file)
	switch {
	case c.ID != "coord-a" || len(c.Brokers) != 1 || c.Brokers[0] != "127.0.0.1:9092" || c.TopicPrefix != "regshift.":
		t.Errorf("id %q brokers %v prefix %q", c.ID, c.Brokers, c.TopicPrefix)
	case c.SigningKey != filepath.Join(dir, "keys", "coordinator.key") || c.OperatorKeysDir != filepath.Join(dir, "operators"):
		t.Errorf("paths not taken from the file's folder: signingKey %q operatorKeysDir %q", c.SigningKey, c.OperatorKeysDir)
	case c.CoordinatorKeysDir != filepath.Join(dir, "keys"):
		t.Errorf("coordinatorKeysDir %q not taken from the file's folder", c.CoordinatorKeysDir)
	case c.PackagesDir != filepath.Join(dir, "packages") || c.AcceptUnsigned || c.Listen != "127.0.0.1:7080":
		t.Errorf("packagesDir %q acceptUnsigned %v listen %q", c.PackagesDir, c.AcceptUnsigned, c.Listen)
	case c.NodeKeysDir != filepath.Join(dir, "nodes") || c.AcceptUnsignedEvents:
		t.Errorf("nodeKeysDir %q acceptUnsignedEvents %v", c.NodeKeysDir, c.AcceptUnsignedEvents)
	case c.Tick != time.Second || c.CommandTTL != 10*time.Minute || c.RegistryEvery != 2*time.Second || c.CommandPartitions != 12:
		t.Errorf("tick %s commandTTL %s registryEvery %s commandPartitions %d", c.Tick, c.CommandTTL, c.RegistryEvery, c.CommandPartitions)
	case c.Security.SASL == nil || c.Security.SASL.Name() != "SCRAM-SHA-512" || c.Security.TLS != nil:
		t.Errorf("security %+v, want SCRAM-SHA-512 without TLS", c.Security)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	file := configDir(t, func(string) string {
		return "signingKey: keys/coordinator.key\nacceptUnsigned: true\nacceptUnsignedEvents: true\n"
	})
	c, err := server.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	d := server.DefaultConfig()
	d.SigningKey, d.AcceptUnsigned, d.AcceptUnsignedEvents = filepath.Join(filepath.Dir(file), "keys", "coordinator.key"), true, true
	if c.ID != d.ID || strings.Join(c.Brokers, ",") != strings.Join(d.Brokers, ",") || c.TopicPrefix != d.TopicPrefix ||
		c.Listen != d.Listen || c.Tick != d.Tick || c.CommandTTL != d.CommandTTL || c.RegistryEvery != d.RegistryEvery ||
		c.CommandPartitions != d.CommandPartitions || c.SigningKey != d.SigningKey || c.AcceptUnsignedEvents != d.AcceptUnsignedEvents ||
		c.NodeKeysDir != "" || c.Security.SASL != nil || c.Security.TLS != nil {
		t.Errorf("got %+v\nwant the defaults %+v", c, d)
	}
}

func TestLoadConfigNamesTheBadField(t *testing.T) {
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				panic("testdata/coordinator.yaml lacks " + old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"unknown field", replace("tick: 1s", "tick: 1s\ntock: 2s"), "field tock not found"},
		{"id", replace("id: coord-a", "id: 'coord a'"), `id: "coord a" must be`},
		{"empty id", replace("id: coord-a", "id: ''"), `id: "" must be`},
		{"broker", replace("[127.0.0.1:9092]", "[127.0.0.1:9092, x]"), `brokers[1]: "x" is not host:port`},
		{"no brokers", replace("[127.0.0.1:9092]", "[]"), "brokers: empty"},
		{"topic prefix", replace("topicPrefix: regshift.", "topicPrefix: ''"), "topicPrefix: empty"},
		{"no signing key", replace("signingKey: keys/coordinator.key", "signingKey: ''"), "signingKey: empty"},
		{"missing signing key", replace("keys/coordinator.key", "keys/nope.key"), "signingKey: "},
		{"public key as signing key", replace("keys/coordinator.key", "keys/coordinator.pub"), "signingKey: "},
		{"no way to accept requests", replace("operatorKeysDir: operators", "operatorKeysDir: ''"), "operatorKeysDir: empty and acceptUnsigned is off"},
		{"missing keyring", replace("operatorKeysDir: operators", "operatorKeysDir: nowhere"), "operatorKeysDir: "},
		{"no way to accept events", replace("nodeKeysDir: nodes", "nodeKeysDir: ''"), "nodeKeysDir: empty and acceptUnsignedEvents is off"},
		{"missing node keyring", replace("nodeKeysDir: nodes", "nodeKeysDir: nowhere"), "nodeKeysDir: "},
		{"missing coordinator keyring", replace("coordinatorKeysDir: keys", "coordinatorKeysDir: nowhere"), "coordinatorKeysDir: "},
		{"coordinator keyring without this replica's key", replace("coordinatorKeysDir: keys", "coordinatorKeysDir: operators"),
			`does not trust this replica's own key "coordinator"`},
		{"listen", replace("listen: 127.0.0.1:7080", "listen: localhost"), `listen: "localhost" is not host:port`},
		{"packages dir", replace("packagesDir: packages", "packagesDir: nowhere"), "packagesDir: "},
		{"tick", replace("tick: 1s", "tick: 0s"), "tick: 0s, want a positive duration"},
		{"tick not a duration", replace("tick: 1s", "tick: soon"), "line 13"},
		{"command ttl", replace("commandTTL: 10m", "commandTTL: -1m"), "commandTTL: -1m0s, want a positive duration"},
		{"registry every", replace("registryEvery: 2s", "registryEvery: 0s"), "registryEvery: 0s, want a positive duration"},
		{"command partitions", replace("commandPartitions: 12", "commandPartitions: 0"), "commandPartitions: 0, want at least 1"},
		{"sasl mechanism", replace("scram-sha-512", "md5"), "kafka.sasl.mechanism: \"md5\", want plain, scram-sha-256 or scram-sha-512"},
		{"sasl username", replace("username: regshift-coordinator", "username: ''"), "kafka.sasl: username and passwordFile are required"},
		{"sasl password file", replace("passwordFile: kafka.password", "passwordFile: nope"), "kafka sasl passwordFile"},
		{"brokers under kafka", replace("kafka:\n", "kafka:\n  brokers: [127.0.0.1:9093]\n"), "kafka: brokers and topicPrefix are top-level"},
		{"tls pair", replace("kafka:\n", "kafka:\n  tls: {certFile: client.pem}\n"), "kafka.tls: certFile and keyFile go together"},
		{"tls ca file", replace("kafka:\n", "kafka:\n  tls: {caFile: ca.pem}\n"), "kafka tls caFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := configDir(t, tc.edit)
			_, err := server.LoadConfig(file)
			if !errors.Is(err, server.ErrConfig) {
				t.Fatalf("error %v, want an ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), file+": ") {
				t.Errorf("error %q, want it to start with the file and contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := server.LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, server.ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want ErrConfig wrapping ErrNotExist", err)
	}
}
