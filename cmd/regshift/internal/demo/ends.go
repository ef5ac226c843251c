package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
)

// Kinds are the registries the demo fleet can move between: each one the
// demo can reach or start on 127.0.0.1.
var Kinds = []registries.Kind{registries.KindZooKeeper, registries.KindConsul, registries.KindEtcd, registries.KindEureka}

// CheckDirection refuses a direction the demo cannot run, naming the
// flag: a kind it does not know, or the same kind at both ends.
func CheckDirection(from, to registries.Kind) error {
	for flag, k := range map[string]registries.Kind{"-from": from, "-to": to} {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("%s: %q is no registry the demo runs; want one of %v", flag, k, Kinds)
		}
	}
	if from == to {
		return fmt.Errorf("-from and -to are both %s: the demo moves a fleet between two kinds", from)
	}
	return nil
}

// end is a registry the demo fleet leaves or moves to; its interface is
// named after its kind.
type end struct {
	kind     registries.Kind
	address  string        // as the plan names it
	settings open.Settings // how to open it
	options  string        // the package's settings.options, YAML flow, or ""
}

// end is the demo's registry of kind.
func (w *world) end(kind registries.Kind) end {
	switch kind {
	case registries.KindConsul:
		return end{kind: kind, address: w.consulAPI, settings: open.Settings{Address: w.consulAPI}, options: "{checkTTL: 3s}"}
	case registries.KindEtcd: // the fleet's keys under the demo's own prefix
		return end{kind: kind, address: w.o.Etcd + w.basePath, settings: open.Settings{Address: w.o.Etcd, BasePath: w.basePath}}
	case registries.KindEureka:
		return end{kind: kind, address: w.o.Eureka, settings: open.Settings{Address: w.o.Eureka}}
	default: // zookeeper
		return end{kind: kind, address: w.o.ZooKeeper + w.basePath, settings: open.Settings{Address: w.o.ZooKeeper, BasePath: w.basePath}}
	}
}

func (e end) name() string { return string(e.kind) }

// start is the agents' start interface on this end.
func (e end) start() nodeagent.StartInterface {
	return nodeagent.StartInterface{Name: e.name(), Type: e.name(), Address: e.settings.Address, BasePath: e.settings.BasePath}
}

// buildPackage builds e's interface package into the folder the
// coordinator serves, as <kind>.tgz, and returns its digest.
func (w *world) buildPackage(e end) (digest string, err error) {
	src := filepath.Join(w.dir, "pkgsrc", e.name())
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	manifest := fmt.Sprintf("apiVersion: %s\nkind: %s\ninterface: %s\ntype: %s\nversion: \"1\"\nsettings:\n  address: %q\n",
		ifacepkg.APIVersion, ifacepkg.Kind, e.name(), e.name(), e.settings.Address)
	if e.settings.BasePath != "" {
		manifest += fmt.Sprintf("  basePath: %q\n", e.settings.BasePath)
	}
	if e.options != "" {
		manifest += "  options: " + e.options + "\n"
	}
	mf := filepath.Join(src, ifacepkg.ManifestName)
	if err := os.WriteFile(mf, []byte(manifest), 0o644); err != nil {
		return "", err
	}
	pkg, digest, err := ifacepkg.Build(mf)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "packages"), 0o755); err != nil {
		return "", err
	}
	return digest, os.WriteFile(filepath.Join(w.dir, "packages", e.name()+".tgz"), pkg, 0o644)
}
