package events

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security is how clients authenticate to and encrypt traffic with the
// brokers. The zero value is plaintext without authentication.
type Security struct {
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// TLSFiles names PEM files for TLS to the brokers.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	InsecureSkipVerify        bool
}

// SASLSettings names a SASL mechanism and its credentials.
type SASLSettings struct {
	Mechanism    string // plain | scram-sha-256 | scram-sha-512
	Username     string
	PasswordFile string
}

// LoadSecurity builds a Security from files; nil arguments leave TLS or
// SASL off.
func LoadSecurity(t *TLSFiles, s *SASLSettings) (Security, error) {
	var sec Security
	if t != nil {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return Security{}, fmt.Errorf("kafka tls caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return Security{}, fmt.Errorf("kafka tls caFile %s: no PEM certificate", t.CAFile)
			}
			cfg.RootCAs = pool
		}
		if t.CertFile != "" || t.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return Security{}, fmt.Errorf("kafka tls client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		sec.TLS = cfg
	}
	if s != nil {
		raw, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return Security{}, fmt.Errorf("kafka sasl passwordFile: %w", err)
		}
		password := strings.TrimRight(string(raw), "\r\n")
		switch s.Mechanism {
		case "plain":
			sec.SASL = plain.Mechanism{Username: s.Username, Password: password}
		case "scram-sha-256", "scram-sha-512":
			algo := scram.SHA256
			if s.Mechanism == "scram-sha-512" {
				algo = scram.SHA512
			}
			if sec.SASL, err = scram.Mechanism(algo, s.Username, password); err != nil {
				return Security{}, fmt.Errorf("kafka sasl: %w", err)
			}
		default:
			return Security{}, errors.New("kafka sasl mechanism: want plain, scram-sha-256 or scram-sha-512")
		}
	}
	return sec, nil
}

// transport is what kafka.Writer and kafka.Client use; nil is kafka-go's
// default transport.
func (s Security) transport() kafka.RoundTripper {
	if s.TLS == nil && s.SASL == nil {
		return nil
	}
	return &kafka.Transport{TLS: s.TLS, SASL: s.SASL}
}

// dialer is what kafka.Reader and direct connections use.
func (s Security) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: s.TLS, SASLMechanism: s.SASL}
}

// Dialer returns a dialer for direct connections with these settings.
func (s Security) Dialer() *kafka.Dialer { return s.dialer() }

// Transport returns what kafka.Client needs for these settings; nil is
// kafka-go's default transport.
func (s Security) Transport() kafka.RoundTripper { return s.transport() }
