package zookeeper_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/regshift/regshift/registries/zookeeper"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		servers    []string
		base       string
	}{
		{"one server", "zk1:2181", []string{"zk1:2181"}, ""},
		{"ensemble", "zk1:2181,zk2:2181,zk3:2182", []string{"zk1:2181", "zk2:2181", "zk3:2182"}, ""},
		{"with base path", "zk1:2181,zk2:2181/services", []string{"zk1:2181", "zk2:2181"}, "/services"},
		{"deep base path", "zk1:2181/a/b/c", []string{"zk1:2181"}, "/a/b/c"},
		{"spaces", "  zk1:2181 , zk2:2181/services ", []string{"zk1:2181", "zk2:2181"}, "/services"},
		{"trailing slash", "zk1:2181/services/", []string{"zk1:2181"}, "/services"},
		{"ip addresses", "10.0.0.5:2181,[::1]:2181", []string{"10.0.0.5:2181", "[::1]:2181"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers, base, err := zookeeper.ParseAddress(tc.addr)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tc.addr, err)
			}
			if !slices.Equal(servers, tc.servers) || base != tc.base {
				t.Errorf("ParseAddress(%q) = %q, %q; want %q, %q", tc.addr, servers, base, tc.servers, tc.base)
			}
		})
	}
}

func TestParseAddressRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		says       string // a part of the error that tells what is wrong
	}{
		{"empty", "", "no servers"},
		{"blank", "   ", "no servers"},
		{"only a base path", "/services", "no servers"},
		{"empty server in the list", "zk1:2181,,zk2:2181", `server 2 "": empty`},
		{"trailing comma", "zk1:2181,", `server 2 "": empty`},
		{"no port", "zk1", `server 1 "zk1": not host:port`},
		{"no host", ":2181", `server 1 ":2181": no host`},
		{"port not a number", "zk1:zk", `port "zk" is not a number`},
		{"port out of range", "zk1:65536", `port "65536" is not a number in 1-65535`},
		{"port zero", "zk1:0", `port "0"`},
		{"a URL", "zk://zk1:2181", "a URL; want host:port"},
		{"root base path", "zk1:2181/", "base path is the root"},
		{"double slash", "zk1:2181//services", `base path "//services" is not clean`},
		{"dot dot", "zk1:2181/a/../b", `base path "/a/../b" is not clean`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers, base, err := zookeeper.ParseAddress(tc.addr)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %q, %q; want an error", tc.addr, servers, base)
			}
			if !errors.Is(err, zookeeper.ErrConfig) {
				t.Errorf("error %v does not wrap zookeeper.ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.addr) {
				t.Errorf("error %q does not quote the address %q and say %q", err, tc.addr, tc.says)
			}
		})
	}
}
