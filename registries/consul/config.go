package consul

import (
	"errors"
	"fmt"
	"time"

	"github.com/regshift/regshift/registries/address"
)

// Config holds the client's settings. Start from DefaultConfig.
type Config struct {
	// Address is the Consul agent's HTTP(S) address, host:port
	// (127.0.0.1:8500).
	Address string
	// Scheme is "http" or "https" ("http").
	Scheme string
	// Datacenter to query; the agent's own when empty.
	Datacenter string
	// Token is the ACL token sent with every request; none when empty.
	Token string
	// TLS configures HTTPS; used when Scheme is "https".
	TLS TLSConfig
	// CheckTTL is the TTL of each instance's health check (15s). The client
	// marks the check passing every CheckTTL/3.
	CheckTTL time.Duration
	// DeregisterCriticalAfter is how long Consul keeps an instance whose
	// check is critical before removing it (1m; Consul's reaper runs about
	// every 30s, so removal can take that much longer).
	DeregisterCriticalAfter time.Duration
	// WatchWait is the longest a blocking query waits for a change (5m).
	WatchWait time.Duration
	// DeregisterOnClose removes this client's instances when it closes
	// (true). The bridge turns it off so its mirrors survive a restart.
	DeregisterOnClose bool
}

// TLSConfig points at the files (or PEM bytes) of the agent's TLS setup.
type TLSConfig struct {
	// ServerName checked in the agent's certificate; the host of Address
	// when empty.
	ServerName string
	// CAFile or CAPem hold the CA that signed the agent's certificate; the
	// system pool when both are empty.
	CAFile string
	CAPem  []byte
	// CertFile/KeyFile or CertPEM/KeyPEM are the client certificate when
	// the agent verifies clients (verify_incoming).
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
	// InsecureSkipVerify disables verification of the agent's certificate.
	InsecureSkipVerify bool
}

// DefaultConfig returns the settings for a local agent.
func DefaultConfig() Config {
	return Config{
		Address:                 "127.0.0.1:8500",
		Scheme:                  "http",
		CheckTTL:                15 * time.Second,
		DeregisterCriticalAfter: time.Minute,
		WatchWait:               5 * time.Minute,
		DeregisterOnClose:       true,
	}
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("consul: invalid config")

func (c *Config) validate() error {
	if err := address.Consul(c.Address); err != nil {
		return fmt.Errorf("%w: Address %q must be host:port: %w", ErrConfig, c.Address, err)
	}
	switch {
	case c.Scheme != "http" && c.Scheme != "https":
		return fmt.Errorf("%w: Scheme %q must be http or https", ErrConfig, c.Scheme)
	case c.CheckTTL < time.Second:
		return fmt.Errorf("%w: CheckTTL %v is below 1s", ErrConfig, c.CheckTTL)
	case c.DeregisterCriticalAfter < time.Minute:
		return fmt.Errorf("%w: DeregisterCriticalAfter %v is below Consul's 1m minimum", ErrConfig, c.DeregisterCriticalAfter)
	case c.WatchWait < time.Second:
		return fmt.Errorf("%w: WatchWait %v is below 1s", ErrConfig, c.WatchWait)
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""), (len(c.TLS.CertPEM) == 0) != (len(c.TLS.KeyPEM) == 0):
		return fmt.Errorf("%w: a TLS client certificate needs both certificate and key", ErrConfig)
	}
	return nil
}
