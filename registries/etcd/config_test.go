package etcd_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/registries/etcd"
)

func TestParseAddress(t *testing.T) {
	eps, prefix, err := etcd.ParseAddress(" e1:2379, [::1]:2379/services-v2/ ")
	if err != nil || !slices.Equal(eps, []string{"e1:2379", "[::1]:2379"}) || prefix != "/services-v2" {
		t.Fatalf("ParseAddress = %q, %q, %v", eps, prefix, err)
	}
	if eps, prefix, err := etcd.ParseAddress("e1:2379"); err != nil || prefix != "" || len(eps) != 1 {
		t.Fatalf("ParseAddress without a prefix = %q, %q, %v", eps, prefix, err)
	}
	for addr, says := range map[string]string{
		"":                    "no servers",
		"http://e1:2379":      "a URL; want host:port[,host:port...][/prefix]",
		"e1:2379/":            "prefix is the root",
		"e1:2379/a//b":        `prefix "/a//b" is not clean`,
		"e1:2379,e2/services": `server 2 "e2": not host:port`,
	} {
		_, _, err := etcd.ParseAddress(addr)
		if !errors.Is(err, etcd.ErrConfig) || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseAddress(%q): %v, want ErrConfig saying %q", addr, err, says)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*etcd.Config)
		says string
	}{
		{"no endpoints", func(c *etcd.Config) { c.Endpoints = nil }, "no Endpoints"},
		{"a URL", func(c *etcd.Config) { c.Endpoints = []string{"http://127.0.0.1:2379"} }, "a URL"},
		{"a path in an endpoint", func(c *etcd.Config) { c.Endpoints = []string{"127.0.0.1:2379/x"} }, "the prefix is a setting of its own"},
		{"relative prefix", func(c *etcd.Config) { c.Prefix = "services" }, `Prefix "services"`},
		{"root prefix", func(c *etcd.Config) { c.Prefix = "/" }, `Prefix "/"`},
		{"trailing slash", func(c *etcd.Config) { c.Prefix = "/services/" }, `Prefix "/services/"`},
		{"short lease", func(c *etcd.Config) { c.LeaseTTL = time.Second }, "LeaseTTL 1s is below 2s"},
		{"fractional lease", func(c *etcd.Config) { c.LeaseTTL = 2500 * time.Millisecond }, "not a whole number of seconds"},
		{"no request timeout", func(c *etcd.Config) { c.RequestTimeout = 0 }, "RequestTimeout"},
		{"no resync", func(c *etcd.Config) { c.WatchResync = -time.Second }, "WatchResync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := etcd.DefaultConfig("127.0.0.1:2379")
			tc.mod(&cfg)
			c, err := etcd.New(cfg, nil)
			if err == nil {
				_ = c.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, etcd.ErrConfig) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("New: %v, want ErrConfig saying %q", err, tc.says)
			}
		})
	}
	c, err := etcd.New(etcd.DefaultConfig("127.0.0.1:2379", "[::1]:2379"), nil)
	if err != nil {
		t.Fatalf("New with the defaults: %v", err)
	}
	_ = c.Close()
}
