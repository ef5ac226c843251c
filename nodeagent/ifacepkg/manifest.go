// Package ifacepkg builds, fetches, verifies and unpacks interface packages:
// what an agent installs to gain a registry interface. A package is a gzip'd
// tar holding manifest.yaml (the interface type, version and settings such as
// the registry address, datacenter and TLS material) and the files the
// manifest names under files/. Its identity is the sha256 of those bytes,
// which the coordinator signs into every install command.
//
// Packages are built deterministically (sorted entries, zeroed times and
// owners), so the same manifest and files always give the same digest.
// Unpacking refuses absolute paths, "..", links and devices, and enforces
// size and count limits; it writes into a temporary folder and renames it
// into place, so a crash leaves either the whole package or nothing.
package ifacepkg

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"

	"github.com/regshift/regshift/registries"
	"go.yaml.in/yaml/v3"
)

// The manifest's fixed header.
const (
	APIVersion = "regshift.io/v1"
	Kind       = "InterfacePackage"
)

// Errors callers branch on; each wraps the detail.
var (
	ErrBadManifest    = errors.New("invalid package manifest")
	ErrUnsafePath     = errors.New("unsafe path in package")
	ErrTooLarge       = errors.New("package over its size limit")
	ErrDigestMismatch = errors.New("package digest mismatch")
	ErrCorrupt        = errors.New("corrupt package")
	ErrFetch          = errors.New("package fetch failed") // retriable
)

// Manifest describes the interface a package installs.
type Manifest struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Interface  string   `yaml:"interface"` // the name commands use, e.g. "consul"
	Type       string   `yaml:"type"`      // zookeeper | consul
	Version    string   `yaml:"version"`
	Settings   Settings `yaml:"settings"`
	// Files lists paths relative to the manifest's folder to include; inside
	// the package they live under files/ with the same relative path.
	Files []string `yaml:"files,omitempty"`
}

// Settings configure the registry client the interface opens.
type Settings struct {
	// Address is host:port for Consul's HTTP API, or a comma-separated list of
	// host:port for ZooKeeper.
	Address    string `yaml:"address"`
	Datacenter string `yaml:"datacenter,omitempty"` // Consul
	BasePath   string `yaml:"basePath,omitempty"`   // ZooKeeper, default /services
	// TokenFile names a file of the package holding the Consul ACL token.
	TokenFile string `yaml:"tokenFile,omitempty"`
	TLS       *TLS   `yaml:"tls,omitempty"`
	// Options carries adapter settings not named above (e.g. checkTTL).
	Options map[string]string `yaml:"options,omitempty"`
}

// TLS names PEM files of the package.
type TLS struct {
	CAFile             string `yaml:"caFile,omitempty"`
	CertFile           string `yaml:"certFile,omitempty"`
	KeyFile            string `yaml:"keyFile,omitempty"`
	ServerName         string `yaml:"serverName,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseManifest decodes and validates a manifest; unknown fields are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every field and names the first one that is wrong.
func (m *Manifest) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadManifest, field, fmt.Sprintf(format, args...))
	}
	switch {
	case m.APIVersion != APIVersion:
		return bad("apiVersion", "%q, want %q", m.APIVersion, APIVersion)
	case m.Kind != Kind:
		return bad("kind", "%q, want %q", m.Kind, Kind)
	case !nameRE.MatchString(m.Interface):
		return bad("interface", "%q is not a name of lower-case letters, digits and dashes", m.Interface)
	case !registries.Kind(m.Type).Valid():
		return bad("type", "%q, want %s", m.Type, registries.KindNames())
	case m.Version == "":
		return bad("version", "empty")
	case m.Settings.Address == "":
		return bad("settings.address", "empty")
	}
	for _, a := range strings.Split(m.Settings.Address, ",") {
		if _, port, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || port == "" {
			return bad("settings.address", "%q is not host:port", a)
		}
	}
	if m.Settings.BasePath != "" && (!strings.HasPrefix(m.Settings.BasePath, "/") || path.Clean(m.Settings.BasePath) != m.Settings.BasePath) {
		return bad("settings.basePath", "%q is not a clean absolute path", m.Settings.BasePath)
	}
	listed := map[string]bool{}
	for i, f := range m.Files {
		if err := checkRel(f); err != nil {
			return bad(fmt.Sprintf("files[%d]", i), "%v", err)
		}
		listed[f] = true
	}
	refs := map[string]string{"settings.tokenFile": m.Settings.TokenFile}
	if t := m.Settings.TLS; t != nil {
		refs["settings.tls.caFile"], refs["settings.tls.certFile"], refs["settings.tls.keyFile"] = t.CAFile, t.CertFile, t.KeyFile
		if (t.CertFile == "") != (t.KeyFile == "") {
			return bad("settings.tls", "certFile and keyFile go together")
		}
	}
	for field, f := range refs {
		if f != "" && !listed[f] {
			return bad(field, "%q is not listed in files", f)
		}
	}
	return nil
}

// checkRel accepts a clean, relative, slash-separated path inside a folder.
func checkRel(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("%w: empty path", ErrUnsafePath)
	case strings.HasPrefix(p, "/") || strings.Contains(p, `\`):
		return fmt.Errorf("%w: %q is absolute or uses backslashes", ErrUnsafePath, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%w: %q is not clean", ErrUnsafePath, p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%w: %q leaves the package", ErrUnsafePath, p)
	}
	return nil
}
