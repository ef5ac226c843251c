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
	"github.com/regshift/regshift/registries/zookeeper"
)

// RealOpener opens the real adapters: ZooKeeper (Curator layout) and
// Consul (agent API with TTL checks). Settings.Options may set
// "sessionTimeout" (ZooKeeper) and "checkTTL" (Consul) as Go durations.
func RealOpener(log *slog.Logger) Opener {
	return func(_ context.Context, spec InterfaceSpec) (registries.Registry, error) {
		l := log.With("interface", spec.Name)
		set := spec.Settings
		switch spec.Type {
		case "zookeeper":
			var servers []string
			for _, s := range strings.Split(set.Address, ",") {
				servers = append(servers, strings.TrimSpace(s))
			}
			cfg := zookeeper.DefaultConfig(servers...)
			if set.BasePath != "" {
				cfg.BasePath = set.BasePath
			}
			if err := duration(set.Options, "sessionTimeout", &cfg.SessionTimeout); err != nil {
				return nil, err
			}
			return zookeeper.New(cfg, l)
		case "consul":
			cfg := consul.DefaultConfig()
			cfg.Address, cfg.Datacenter = set.Address, set.Datacenter
			if set.TokenFile != "" {
				b, err := os.ReadFile(spec.File(set.TokenFile))
				if err != nil {
					return nil, fmt.Errorf("consul token: %w", err)
				}
				cfg.Token = strings.TrimSpace(string(b))
			}
			if t := set.TLS; t != nil {
				cfg.Scheme = "https"
				cfg.TLS = consul.TLSConfig{ServerName: t.ServerName, CAFile: spec.File(t.CAFile),
					CertFile: spec.File(t.CertFile), KeyFile: spec.File(t.KeyFile), InsecureSkipVerify: t.InsecureSkipVerify}
			}
			if err := duration(set.Options, "checkTTL", &cfg.CheckTTL); err != nil {
				return nil, err
			}
			return consul.New(cfg, l)
		default:
			return nil, fmt.Errorf("interface %s: unknown type %q", spec.Name, spec.Type)
		}
	}
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
