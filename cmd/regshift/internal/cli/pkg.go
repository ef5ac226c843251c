package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/regshift/regshift/nodeagent/ifacepkg"
)

// packageBuild builds an interface package from a manifest and prints its
// digest, which a rollout plan's to.package.digest names.
func (c *CLI) packageBuild(_ context.Context, args []string) error {
	fs := c.flags("package build", "package build -f manifest.yaml [-o consul.tgz]")
	manifest := fs.String("f", "", "the package manifest (required; its files: are taken relative to it)")
	out := fs.String("o", "", "where to write the package (default: <interface>.tgz beside the manifest)")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *manifest == "" {
		fs.Usage()
		return fmt.Errorf("%w: -f is required", ErrUsage)
	}
	pkg, digest, err := ifacepkg.Build(*manifest)
	if err != nil {
		return err
	}
	if *out == "" {
		raw, err := os.ReadFile(*manifest)
		if err != nil {
			return err
		}
		m, err := ifacepkg.ParseManifest(raw)
		if err != nil {
			return err
		}
		*out = filepath.Join(filepath.Dir(*manifest), m.Interface+".tgz")
	}
	if err := os.WriteFile(*out, pkg, 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(c.Stdout, "%s\n", digest)
	fmt.Fprintf(c.Stderr, "wrote %s (%d bytes); install it with url file://%s (agents whose fetch.fileRoot holds it) or serve it over http(s)\n", *out, len(pkg), strings.TrimPrefix(abs, "file://"))
	return nil
}
