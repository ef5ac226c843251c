// Command regshift is the one regshift binary. `regshift help` lists its
// commands; the work is done in package cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regshift/regshift/cmd/regshift/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "regshift:", err)
		os.Exit(cli.ExitCode(err))
	}
}
