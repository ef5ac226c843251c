package events

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// KafkaConfig is how a process reaches the brokers, in the shape every
// regshift config file uses (the agent's and the coordinator's YAML, the
// CLI's flags): brokers, the topic prefix, and optional TLS and SASL.
type KafkaConfig struct {
	Brokers     []string   `yaml:"brokers"`
	TopicPrefix string     `yaml:"topicPrefix"`
	TLS         *KafkaTLS  `yaml:"tls"`
	SASL        *KafkaSASL `yaml:"sasl"`
}

// KafkaTLS names PEM files; with none, the system roots verify the brokers.
type KafkaTLS struct {
	CAFile             string `yaml:"caFile"`
	CertFile           string `yaml:"certFile"`
	KeyFile            string `yaml:"keyFile"`
	ServerName         string `yaml:"serverName"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
}

// KafkaSASL authenticates to the brokers.
type KafkaSASL struct {
	Mechanism    string `yaml:"mechanism"` // plain | scram-sha-256 | scram-sha-512
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
}

// ErrKafkaConfig wraps every error Check returns.
var ErrKafkaConfig = errors.New("invalid kafka settings")

// Check validates the settings; prefix names them in errors ("kafka";
// empty when they are a file of their own).
// Brokers are checked only when requireBrokers is set (a coordinator
// config names them at its top level).
func (k KafkaConfig) Check(prefix string, requireBrokers bool) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrKafkaConfig, strings.TrimPrefix(prefix+field, "."), fmt.Sprintf(format, args...))
	}
	if requireBrokers && len(k.Brokers) == 0 {
		return bad(".brokers", "empty")
	}
	for i, b := range k.Brokers {
		if _, p, err := net.SplitHostPort(b); err != nil || p == "" {
			return bad(fmt.Sprintf(".brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if s := k.SASL; s != nil {
		switch s.Mechanism {
		case "plain", "scram-sha-256", "scram-sha-512":
		default:
			return bad(".sasl.mechanism", "%q, want plain, scram-sha-256 or scram-sha-512", s.Mechanism)
		}
		if s.Username == "" || s.PasswordFile == "" {
			return bad(".sasl", "username and passwordFile are required")
		}
	}
	if t := k.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return bad(".tls", "certFile and keyFile go together")
	}
	return nil
}

// RelativeTo makes the files the settings name relative to dir (a config
// file's folder) unless they are absolute.
func (k *KafkaConfig) RelativeTo(dir string) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if t := k.TLS; t != nil {
		t.CAFile, t.CertFile, t.KeyFile = rel(t.CAFile), rel(t.CertFile), rel(t.KeyFile)
	}
	if s := k.SASL; s != nil {
		s.PasswordFile = rel(s.PasswordFile)
	}
}

// Security loads the TLS files and SASL password the settings name.
func (k KafkaConfig) Security() (Security, error) {
	var t *TLSFiles
	if k.TLS != nil {
		t = &TLSFiles{CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile, KeyFile: k.TLS.KeyFile,
			ServerName: k.TLS.ServerName, InsecureSkipVerify: k.TLS.InsecureSkipVerify}
	}
	var s *SASLSettings
	if k.SASL != nil {
		s = &SASLSettings{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, PasswordFile: k.SASL.PasswordFile}
	}
	return LoadSecurity(t, s)
}
