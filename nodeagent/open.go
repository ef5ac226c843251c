package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/open"
)

// RealOpener opens the real adapters through registries/open: ZooKeeper
// (Curator layout) and Consul (agent API with TTL checks). Settings.Options
// may set "sessionTimeout" (ZooKeeper) and "checkTTL" (Consul) as Go
// durations.
func RealOpener(log *slog.Logger) Opener {
	return func(_ context.Context, spec InterfaceSpec) (registries.Registry, error) {
		s, err := openSettings(spec)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
		}
		r, err := open.Open(registries.Kind(spec.Type), s, log.With("interface", spec.Name))
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
		}
		return r, nil
	}
}

// openSettings reads what spec's settings name — the token file, the TLS
// files' paths inside the package, the option durations — into the
// opener's settings.
func openSettings(spec InterfaceSpec) (open.Settings, error) {
	set := spec.Settings
	s := open.Settings{Address: set.Address, BasePath: set.BasePath, Datacenter: set.Datacenter}
	if set.TokenFile != "" {
		b, err := os.ReadFile(spec.File(set.TokenFile))
		if err != nil {
			return open.Settings{}, fmt.Errorf("consul token: %w", err)
		}
		s.Token = strings.TrimSpace(string(b))
	}
	if t := set.TLS; t != nil {
		s.TLS = &consul.TLSConfig{ServerName: t.ServerName, CAFile: spec.File(t.CAFile),
			CertFile: spec.File(t.CertFile), KeyFile: spec.File(t.KeyFile), InsecureSkipVerify: t.InsecureSkipVerify}
	}
	if err := duration(set.Options, "sessionTimeout", &s.SessionTimeout); err != nil {
		return open.Settings{}, err
	}
	if err := duration(set.Options, "checkTTL", &s.CheckTTL); err != nil {
		return open.Settings{}, err
	}
	return s, nil
}

func duration(opts map[string]string, key string, into *time.Duration) error {
	v, ok := opts[key]
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("settings.options.%s: %w", key, err)
	}
	*into = d
	return nil
}
