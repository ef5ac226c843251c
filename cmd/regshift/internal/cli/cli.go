// Package cli is the regshift command line: it parses arguments and runs
// the subcommand they name. main only calls Run and turns its error into an
// exit code.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/regshift/regshift/cmd/regshift/internal/benchfleet"
)

// ErrUsage is wrapped by errors in the command line itself; they exit with 2.
var ErrUsage = errors.New("usage")

// ExitCode is the process exit code for an error Run returned.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	return 1
}

// CLI holds where the commands write.
type CLI struct {
	Stdout, Stderr io.Writer
}

// Run runs the command named by args with the process's stdout and stderr.
func Run(ctx context.Context, args []string) error {
	return (&CLI{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, args)
}

type command struct {
	name, summary string
	run           func(c *CLI, ctx context.Context, args []string) error
}

func (c *CLI) commands() []command {
	return []command{
		{"demo", "migrate a live demo fleet from ZooKeeper to Consul and report (-fail: watch it switch back)", (*CLI).demoCmd},
		{"agent", "run the node agent on this host (-c agent.yaml)", (*CLI).agent},
		{"package build", "build an interface package from a manifest and print its digest", (*CLI).packageBuild},
		{"rollout preview", "print a plan's waves, gates and rollback scope without sending anything", (*CLI).rolloutPreview},
		{"coordinator", "run a coordinator replica (-c coordinator.yaml)", (*CLI).coordinator},
		{"rollout create", "publish a create-rollout request for a plan (-f plan.yaml -id ROLLOUT)", requestCommand(requestCreate)},
		{"rollout pause", "publish a pause: no new commands until resume (-id ROLLOUT)", requestCommand(requestPause)},
		{"rollout resume", "publish a resume of a paused or held rollout (-id ROLLOUT)", requestCommand(requestResume)},
		{"rollout approve", "publish an approve: pass the gate a rollout is held at (-id ROLLOUT [-wave N])", requestCommand(requestApprove)},
		{"rollout abort", "publish an abort: switch every touched node back, consumers first (-id ROLLOUT)", requestCommand(requestAbort)},
		{"rollout finalize", "publish a finalize: uninstall the old interface everywhere (-id ROLLOUT)", requestCommand(requestFinalize)},
		{"rollout status", "print a rollout's waves, nodes and decisions, or list rollouts; -watch redraws", (*CLI).rolloutStatus},
		{"nodes", "print every node: rollout, wave, progress, health, pending command, failure", (*CLI).nodes},
		{"bench fleet", "run a rollout to N simulated agents and print its figures (-nodes N [-kafka brokers [-split]])", (*CLI).benchFleet},
		{"keys generate", "write a new Ed25519 key pair (see `regshift keys generate -h`)", (*CLI).keysGenerate},
	}
}

// hidden are the commands regshift starts itself; the usage does not list them.
func (c *CLI) hidden() []command {
	return []command{
		{benchfleet.ChildCommand, "the coordinator child of `bench fleet -split`", (*CLI).benchFleetCoordinator},
	}
}

// Run runs the command named by args.
func (c *CLI) Run(ctx context.Context, args []string) error {
	for _, cmd := range append(c.commands(), c.hidden()...) {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			return cmd.run(c, ctx, args[len(words):])
		}
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		c.usage(c.Stdout)
		return nil
	}
	c.usage(c.Stderr)
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", ErrUsage)
	}
	return fmt.Errorf("%w: unknown command %q", ErrUsage, strings.Join(args, " "))
}

func (c *CLI) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: regshift <command> [flags]\n\ncommands:")
	for _, cmd := range c.commands() {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.name, cmd.summary)
	}
}

// flags returns a flag set that reports errors instead of exiting.
func (c *CLI) flags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("regshift "+name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "usage: regshift %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func (c *CLI) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	return nil
}
