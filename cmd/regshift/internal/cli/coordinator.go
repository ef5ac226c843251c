package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/regshift/regshift/coordinator/server"

	"github.com/prometheus/client_golang/prometheus"
)

// coordinator runs a coordinator replica until interrupted (SIGINT/SIGTERM
// stop it: it leaves the leader election and closes its API). Start a
// second one on another host for a standby that takes over.
func (c *CLI) coordinator(ctx context.Context, args []string) error {
	file, log, err := c.daemonFlags("coordinator", "the coordinator's YAML config (required; see docs/operating.md)", args)
	if err != nil || log == nil {
		return err
	}
	cfg, err := server.LoadConfig(file)
	if err != nil {
		return err
	}
	rt, err := server.New(cfg, server.Deps{Registry: prometheus.NewRegistry()}, log)
	if err != nil {
		return err
	}
	return rt.Run(ctx)
}

// daemonFlags parses the flags of a long-running command, "-c FILE
// [-log-level info]", and returns the config file and a logger at that
// level; a nil logger and error mean -h was asked and answered.
func (c *CLI) daemonFlags(name, fileDoc string, args []string) (string, *slog.Logger, error) {
	fs := c.flags(name, name+" -c "+name+".yaml [-log-level info]")
	file := fs.String("c", "", fileDoc)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return "", nil, err
	}
	if *file == "" {
		fs.Usage()
		return "", nil, fmt.Errorf("%w: -c is required", ErrUsage)
	}
	log, err := c.logger(*level)
	return *file, log, err
}
