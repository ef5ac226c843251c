package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/regshift/regshift/cmd/regshift/internal/benchfleet"
)

// benchFleet runs the scale harness (see package benchfleet) -runs times
// and prints a row of figures for each.
func (c *CLI) benchFleet(ctx context.Context, args []string) error {
	fs := c.flags("bench fleet", "bench fleet -nodes N [-kafka brokers] [-split] [-unsigned-events] [-soak 1s] [-runs 1] [-health 5s] [-partitions 12] [-timeout 30m] [-cpuprofile f]")
	def := benchfleet.DefaultConfig()
	nodes := fs.Int("nodes", def.Nodes, "simulated nodes, half providers, half consumers")
	kafkaAddr := fs.String("kafka", "", "Kafka brokers, comma-separated (`make up` starts one); empty: an embedded broker")
	soak := fs.Duration("soak", def.Soak, "each gate's soak, whole seconds")
	runs := fs.Int("runs", 1, "rollouts to measure, one after the other, each on fresh topics")
	health := fs.Duration("health", def.Health, "each node reports health this often, spread evenly (0: only after commands)")
	partitions := fs.Int("partitions", def.Partitions, "partitions of the commands topic")
	timeout := fs.Duration("timeout", def.Timeout, "a rollout not ended by then is reported as not finalized")
	level := fs.String("log-level", "error", "component logs on stderr: debug, info, warn or error")
	split := fs.Bool("split", false, "run the coordinator in a child process and report its own heap (coord MB columns); the embedded broker stays in this process")
	unsigned := fs.Bool("unsigned-events", false, "the fleet publishes acks and health unsigned and the coordinator accepts them so (as before agents signed, for comparison); default: each node signs with its own key")
	console := fs.Bool("console", false, "print the coordinator's console URL (to watch the rollout in a browser) as each run starts")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the fleet, the embedded broker and, without -split, the coordinator) to this file")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *runs < 1 {
		return fmt.Errorf("%w: -runs %d: want at least 1", ErrUsage, *runs)
	}
	log, err := c.logger(*level)
	if err != nil {
		return err
	}
	cfg := benchfleet.Config{Nodes: *nodes, Soak: *soak, Health: *health, Partitions: *partitions, Timeout: *timeout, Split: *split,
		UnsignedEvents: *unsigned}
	if *console {
		cfg.OnAPI = func(url string) { fmt.Fprintf(c.Stdout, "console: %s/#/rollouts/%s\n", url, benchfleet.RolloutID) }
	}
	if *kafkaAddr != "" {
		cfg.Brokers = strings.Split(*kafkaAddr, ",")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	benchfleet.WriteSetup(c.Stdout, cfg, *runs)
	benchfleet.WriteHeader(c.Stdout)
	failed := 0
	for i := range *runs {
		res, err := benchfleet.Run(ctx, cfg, log)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		benchfleet.WriteRow(c.Stdout, i+1, res)
		if !res.Finalized() {
			failed++
		}
	}
	benchfleet.WriteLegend(c.Stdout)
	if failed > 0 {
		return fmt.Errorf("%d of %d runs did not finalize without a switch-back", failed, *runs)
	}
	return nil
}

// benchFleetCoordinator is the child `bench fleet -split` starts: a
// coordinator that answers the harness on stdin and stdout until stdin ends.
func (c *CLI) benchFleetCoordinator(ctx context.Context, args []string) error {
	return benchfleet.ServeCoordinator(ctx, args, os.Stdin, c.Stdout, c.Stderr)
}
