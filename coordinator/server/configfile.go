package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/events"
)

// ErrConfig wraps every error of a coordinator config file; the message
// names the file and the field.
var ErrConfig = errors.New("invalid coordinator config")

// fileConfig is the YAML shape of Config (docs/operating.md). Unset fields
// keep DefaultConfig's values.
type fileConfig struct {
	ID                   string        `yaml:"id"`
	Brokers              []string      `yaml:"brokers"`
	TopicPrefix          string        `yaml:"topicPrefix"`
	SigningKey           string        `yaml:"signingKey"`
	OperatorKeysDir      string        `yaml:"operatorKeysDir"`
	CoordinatorKeysDir   string        `yaml:"coordinatorKeysDir"`
	AcceptUnsigned       bool          `yaml:"acceptUnsigned"`
	NodeKeysDir          string        `yaml:"nodeKeysDir"`
	AcceptUnsignedEvents bool          `yaml:"acceptUnsignedEvents"`
	Listen               string        `yaml:"listen"`
	PackagesDir          string        `yaml:"packagesDir"`
	Tick                 time.Duration `yaml:"tick"`
	CommandTTL           time.Duration `yaml:"commandTTL"`
	RegistryEvery        time.Duration `yaml:"registryEvery"`
	CommandPartitions    int           `yaml:"commandPartitions"`
	// Kafka is the kafka section every config shares (events.KafkaConfig),
	// without brokers and prefix, which are top-level fields here.
	Kafka events.KafkaConfig `yaml:"kafka"`
}

var replicaRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// LoadConfig reads a coordinator config file: YAML, unknown fields refused,
// unset fields at DefaultConfig's values. Relative paths are taken from the
// file's folder. It loads the signing key, the operator and coordinator
// keyrings and the Kafka TLS and SASL files, so a wrong one fails here with
// its field rather than later.
func LoadConfig(file string) (Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := parseConfig(b, filepath.Dir(file))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

func parseConfig(b []byte, dir string) (Config, error) {
	d := DefaultConfig()
	f := fileConfig{ID: d.ID, Brokers: d.Brokers, TopicPrefix: d.TopicPrefix, Listen: d.Listen, Tick: d.Tick,
		CommandTTL: d.CommandTTL, RegistryEvery: d.RegistryEvery, CommandPartitions: d.CommandPartitions}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	for _, p := range []*string{&f.SigningKey, &f.OperatorKeysDir, &f.CoordinatorKeysDir, &f.NodeKeysDir, &f.PackagesDir} {
		*p = relativeTo(dir, *p)
	}
	f.Kafka.RelativeTo(dir)
	if err := f.validate(); err != nil {
		return Config{}, err
	}
	sec, err := f.Kafka.Security()
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return Config{ID: f.ID, Brokers: f.Brokers, TopicPrefix: f.TopicPrefix, SigningKey: f.SigningKey,
		OperatorKeysDir: f.OperatorKeysDir, CoordinatorKeysDir: f.CoordinatorKeysDir, AcceptUnsigned: f.AcceptUnsigned,
		NodeKeysDir: f.NodeKeysDir, AcceptUnsignedEvents: f.AcceptUnsignedEvents, Listen: f.Listen, PackagesDir: f.PackagesDir,
		Tick: f.Tick, CommandTTL: f.CommandTTL, RegistryEvery: f.RegistryEvery, CommandPartitions: f.CommandPartitions,
		Security: sec}, nil
}

func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func (f *fileConfig) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case !replicaRE.MatchString(f.ID):
		return bad("id", "%q must be 1-128 letters, digits, '.', '_' or '-'", f.ID)
	case len(f.Brokers) == 0:
		return bad("brokers", "empty")
	case f.TopicPrefix == "":
		return bad("topicPrefix", "empty")
	case f.SigningKey == "":
		return bad("signingKey", "empty: commands must be signed")
	case f.OperatorKeysDir == "" && !f.AcceptUnsigned:
		return bad("operatorKeysDir", "empty and acceptUnsigned is off: no request could be accepted")
	case f.NodeKeysDir == "" && !f.AcceptUnsignedEvents:
		return bad("nodeKeysDir", "empty and acceptUnsignedEvents is off: no agent event could be accepted")
	case f.Tick <= 0:
		return bad("tick", "%s, want a positive duration", f.Tick)
	case f.CommandTTL <= 0:
		return bad("commandTTL", "%s, want a positive duration", f.CommandTTL)
	case f.RegistryEvery <= 0:
		return bad("registryEvery", "%s, want a positive duration", f.RegistryEvery)
	case f.CommandPartitions < 1:
		return bad("commandPartitions", "%d, want at least 1", f.CommandPartitions)
	case len(f.Kafka.Brokers) > 0 || f.Kafka.TopicPrefix != "":
		return bad("kafka", "brokers and topicPrefix are top-level fields here, not under kafka")
	}
	for i, b := range f.Brokers {
		if !isHostPort(b) {
			return bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if !isHostPort(f.Listen) {
		return bad("listen", "%q is not host:port", f.Listen)
	}
	signer, err := events.LoadSigner(f.SigningKey)
	if err != nil {
		return bad("signingKey", "%v", err)
	}
	if _, _, err := stateVerifier(signer, f.CoordinatorKeysDir); err != nil {
		return bad("coordinatorKeysDir", "%v", err)
	}
	if f.OperatorKeysDir != "" {
		if _, err := events.LoadKeyring(f.OperatorKeysDir); err != nil {
			return bad("operatorKeysDir", "%v", err)
		}
	}
	if f.NodeKeysDir != "" {
		if _, err := events.LoadKeyring(f.NodeKeysDir); err != nil {
			return bad("nodeKeysDir", "%v", err)
		}
	}
	if f.PackagesDir != "" {
		if st, err := os.Stat(f.PackagesDir); err != nil || !st.IsDir() {
			return bad("packagesDir", "%q is not a folder", f.PackagesDir)
		}
	}
	if err := f.Kafka.Check("kafka", false); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func isHostPort(a string) bool {
	_, p, err := net.SplitHostPort(a)
	return err == nil && p != ""
}
