package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
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
	p, err := loadPlan(*file)
	if err != nil {
		return err
	}
	return coordinator.Preview(c.Stdout, p)
}

// loadPlan reads and parses a plan file; errors name the file.
func loadPlan(file string) (schema.Plan, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return schema.Plan{}, fmt.Errorf("%w: %w", coordinator.ErrPlan, err)
	}
	p, err := coordinator.ParsePlan(b)
	if err != nil {
		return schema.Plan{}, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}
