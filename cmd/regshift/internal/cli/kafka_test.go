package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// kafkaSettings parses args as the Kafka flags of a command and resolves them.
func kafkaSettings(t *testing.T, args ...string) (events.KafkaConfig, events.Security, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var k kafkaFlags
	k.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return k.settings(fs)
}

func TestKafkaConfigFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "kafka.password", "s3cret\n")
	file := writeFile(t, dir, "kafka.yaml", `brokers: [kafka-1:9093, kafka-2:9093]
topicPrefix: prod.
tls: {serverName: kafka.internal, insecureSkipVerify: true}
sasl: {mechanism: plain, username: ops, passwordFile: kafka.password}
`)
	for _, tc := range []struct {
		name          string
		args          []string
		brokers       []string
		prefix        string
		tls, sasl     bool
		passwordInDir bool
	}{
		{"flags only", nil, []string{"127.0.0.1:9092"}, "regshift.", false, false, false},
		{"the file", []string{"-kafka-config", file}, []string{"kafka-1:9093", "kafka-2:9093"}, "prod.", true, true, true},
		{"flags given override the file", []string{"-kafka-config", file, "-brokers", "a:1,b:2", "-prefix", "test."},
			[]string{"a:1", "b:2"}, "test.", true, true, true},
		{"a flag given as its default overrides too", []string{"-prefix", "regshift.", "-kafka-config", file},
			[]string{"kafka-1:9093", "kafka-2:9093"}, "regshift.", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, sec, err := kafkaSettings(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(kc.Brokers, tc.brokers) || kc.TopicPrefix != tc.prefix {
				t.Errorf("brokers %q prefix %q, want %q %q", kc.Brokers, kc.TopicPrefix, tc.brokers, tc.prefix)
			}
			if (sec.TLS != nil) != tc.tls || (sec.SASL != nil) != tc.sasl {
				t.Fatalf("security %+v, want TLS %v SASL %v", sec, tc.tls, tc.sasl)
			}
			if tc.tls && (sec.TLS.ServerName != "kafka.internal" || !sec.TLS.InsecureSkipVerify) {
				t.Errorf("TLS %+v", sec.TLS)
			}
			if tc.sasl && sec.SASL.Name() != "PLAIN" {
				t.Errorf("SASL mechanism %s, want PLAIN", sec.SASL.Name())
			}
			if tc.passwordInDir && kc.SASL.PasswordFile != filepath.Join(dir, "kafka.password") {
				t.Errorf("passwordFile %q is not taken from the file's folder", kc.SASL.PasswordFile)
			}
		})
	}
}

func TestKafkaConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pw", "x")
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "brokers: [a:1]\ntsl: {caFile: ca.pem}\n", "line 2: field tsl not found"},
		{"field of tls unknown", "tls: {cafile: ca.pem}\n", "field cafile not found"},
		{"broker", "brokers: [a:1, kafka]\n", `settings: brokers[1]: "kafka" is not host:port`},
		{"no brokers", "brokers: []\n", "settings: brokers: empty"},
		{"mechanism", "sasl: {mechanism: gssapi, username: ops, passwordFile: pw}\n", "settings: sasl.mechanism: \"gssapi\""},
		{"no username", "sasl: {mechanism: plain, passwordFile: pw}\n", "settings: sasl: username and passwordFile are required"},
		{"cert without key", "tls: {certFile: client.pem}\n", "settings: tls: certFile and keyFile go together"},
		{"password file missing", "sasl: {mechanism: plain, username: ops, passwordFile: nope}\n", "passwordFile: open " + filepath.Join(dir, "nope")},
		{"CA file missing", "tls: {caFile: ca.pem}\n", "caFile: open " + filepath.Join(dir, "ca.pem")},
		{"empty", "", "empty file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			_, _, err := kafkaSettings(t, "-kafka-config", file)
			if !errors.Is(err, events.ErrKafkaConfig) || !strings.HasPrefix(err.Error(), file+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want an ErrKafkaConfig naming %s and %q", err, file, tc.want)
			}
		})
	}
	// Through the command line: the file is read before anything is published.
	bad := writeFile(t, dir, "bad.yaml", "sasl: {mechanism: plain}\n")
	_, _, err := run(t, "rollout", "pause", "-id", "ro-1", "-kafka-config", bad)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), bad+": invalid kafka settings: sasl: username and passwordFile are required") {
		t.Errorf("rollout pause with a bad -kafka-config: %v (exit %d)", err, ExitCode(err))
	}
	_, _, err = run(t, "rollout", "pause", "-id", "ro-1", "-kafka-config", filepath.Join(dir, "missing.yaml"))
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "-kafka-config: invalid kafka settings: open "+filepath.Join(dir, "missing.yaml")) {
		t.Errorf("rollout pause with a missing -kafka-config: %v (exit %d)", err, ExitCode(err))
	}
}

// TestRequestThroughSASL publishes `rollout pause` to a private broker's
// SASL_PLAINTEXT listener with the credentials a -kafka-config file names,
// reads the request back on the broker's plaintext listener, and checks
// that a wrong password in the file is refused.
func TestRequestThroughSASL(t *testing.T) {
	p := servers.StartPrivate(t, servers.Kafka)
	dir := t.TempDir()
	pw := writeFile(t, dir, "kafka.password", servers.PrivateSASLPassword+"\n")
	cfg := writeFile(t, dir, "kafka.yaml", "brokers: ["+p.SASLAddr()+"]\ntopicPrefix: sasl.\n"+
		"sasl: {mechanism: plain, username: "+servers.PrivateSASLUser+", passwordFile: kafka.password}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tcfg := events.DefaultTopicsConfig()
	tcfg.Prefix, tcfg.RequestPartitions = "sasl.", 1
	topics, err := events.Bootstrap(ctx, []string{p.Addr()}, tcfg)
	if err != nil {
		t.Fatalf("bootstrap topics: %v", err)
	}

	out, stderr, err := run(t, "rollout", "pause", "-id", "ro-sasl", "-by", "carol", "-kafka-config", cfg)
	if err != nil {
		t.Fatalf("pause over SASL: %v\n%s", err, stderr)
	}
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{p.Addr()}, Topic: topics.Requests, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = reader.Close() })
	rec, err := reader.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("read back from %s: %v", topics.Requests, err)
	}
	d, err := unsignedVerifier(t).Decode(rec)
	if err != nil {
		t.Fatalf("the coordinator's verifier refuses the record: %v", err)
	}
	if pause, ok := d.Message.(*schema.Pause); !ok || pause.RolloutID != "ro-sasl" || pause.RequestID != requestID(t, out) {
		t.Errorf("read back %#v, want the pause of ro-sasl printed in:\n%s", d.Message, out)
	}

	if err := os.WriteFile(pw, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "rollout", "pause", "-id", "ro-sasl", "-kafka-config", cfg, "-timeout", "3s")
	if err == nil || !strings.Contains(err.Error(), "publish to sasl.requests on "+p.SASLAddr()) {
		t.Fatalf("a wrong password: %v, want the publish refused", err)
	}
	t.Logf("wrong password refused: %v", err)
}
