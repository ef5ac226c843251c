package cli

import (
	"context"
	"fmt"

	"github.com/regshift/regshift/coordinator"
)

// rolloutPreview prints what a plan would do, sending nothing.
func (c *CLI) rolloutPreview(_ context.Context, args []string) error {
	fs := c.flags("rollout preview", "rollout preview -f plan.yaml")
	file := fs.String("f", "", "the rollout plan (required)")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *file == "" {
		fs.Usage()
		return fmt.Errorf("%w: -f is required", ErrUsage)
	}
	p, err := coordinator.LoadPlan(*file)
	if err != nil {
		return err
	}
	return coordinator.Preview(c.Stdout, p)
}
