package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries/consul"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/registries/zookeeper"
)

func TestOpenSettings(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, ifacepkg.FilesDir)
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "token"), []byte(" s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec InterfaceSpec
		want open.Settings
	}{
		{"start interface",
			InterfaceSpec{Name: "zookeeper", Type: "zookeeper", Settings: ifacepkg.Settings{Address: "zk1:2181, zk2:2181", BasePath: "/services"}},
			open.Settings{Address: "zk1:2181, zk2:2181", BasePath: "/services"}},
		{"zookeeper package with a session timeout",
			InterfaceSpec{Name: "zk", Type: "zookeeper", Dir: dir, Settings: ifacepkg.Settings{Address: "zk1:2181/app",
				Options: map[string]string{"sessionTimeout": "30s"}}},
			open.Settings{Address: "zk1:2181/app", SessionTimeout: 30 * time.Second}},
		{"consul package with token, TLS and check TTL",
			InterfaceSpec{Name: "consul", Type: "consul", Dir: dir, Settings: ifacepkg.Settings{Address: "consul:8501", Datacenter: "dc1",
				TokenFile: "token", TLS: &ifacepkg.TLS{CAFile: "tls/ca.pem", CertFile: "tls/c.pem", KeyFile: "tls/k.pem", ServerName: "consul.internal"},
				Options: map[string]string{"checkTTL": "5s"}}},
			open.Settings{Address: "consul:8501", Datacenter: "dc1", Token: "s3cret", CheckTTL: 5 * time.Second,
				TLS: &consul.TLSConfig{ServerName: "consul.internal", CAFile: filepath.Join(files, "tls", "ca.pem"),
					CertFile: filepath.Join(files, "tls", "c.pem"), KeyFile: filepath.Join(files, "tls", "k.pem")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openSettings(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("openSettings\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOpenSettingsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  ifacepkg.Settings
		says string
	}{
		{"missing token file", ifacepkg.Settings{Address: "consul:8500", TokenFile: "token"}, "consul token"},
		{"bad check TTL", ifacepkg.Settings{Address: "consul:8500", Options: map[string]string{"checkTTL": "soon"}}, "settings.options.checkTTL"},
		{"bad session timeout", ifacepkg.Settings{Address: "zk1:2181", Options: map[string]string{"sessionTimeout": "10"}}, "settings.options.sessionTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openSettings(InterfaceSpec{Name: "x", Type: "consul", Dir: t.TempDir(), Settings: tc.set})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("openSettings = %v; want an error saying %q", err, tc.says)
			}
		})
	}
}

func TestRealOpenerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec InterfaceSpec
		is   error
		says string
	}{
		{"unknown type", InterfaceSpec{Name: "nacos", Type: "nacos", Settings: ifacepkg.Settings{Address: "nacos:8848"}},
			open.ErrUnknownKind, `interface nacos: unknown registry kind "nacos"`},
		{"bad zookeeper address", InterfaceSpec{Name: "zk", Type: "zookeeper", Settings: ifacepkg.Settings{Address: "zk1:2181,"}},
			zookeeper.ErrConfig, `interface zk: zookeeper: invalid config: address "zk1:2181,"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := RealOpener(quiet())(t.Context(), tc.spec)
			if err == nil {
				_ = r.Close()
				t.Fatal("opened; want an error")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("RealOpener = %v; want an error wrapping %v that says %q", err, tc.is, tc.says)
			}
		})
	}
}
