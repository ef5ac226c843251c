package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/regshift/regshift/nodeagent"
)

// agent runs the node agent until interrupted (SIGINT/SIGTERM stop it
// gracefully: it deregisters, as configured, and closes its sessions).
func (c *CLI) agent(ctx context.Context, args []string) error {
	fs := c.flags("agent", "agent -c agent.yaml [-log-level info]")
	file := fs.String("c", "", "the agent's YAML config (required; see README \"Node agent\")")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *file == "" {
		fs.Usage()
		return fmt.Errorf("%w: -c is required", ErrUsage)
	}
	log, err := c.logger(*level)
	if err != nil {
		return err
	}
	cfg, err := nodeagent.LoadConfig(*file)
	if err != nil {
		return err
	}
	a, err := nodeagent.NewAgent(cfg, nodeagent.Deps{}, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// logger writes JSON lines to stderr at the given level.
func (c *CLI) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: -log-level: %w", ErrUsage, err)
	}
	w := c.Stderr
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
