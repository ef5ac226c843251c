package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/schema"
)

// rolloutPreview prints what a plan would do, sending nothing.
func (c *CLI) rolloutPreview(_ context.Context, args []string) error {
	fs := c.flags("rollout preview", "rollout preview -f plan.yaml [-offline]")
	file := fs.String("f", "", "the rollout plan (required)")
	offline := fs.Bool("offline", false, "do not read the old registry for the instances no node of the plan registered")
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
	if err := coordinator.Preview(c.Stdout, p); err != nil || *offline {
		return err
	}
	return previewUnowned(c.Stdout, p)
}

// previewUnowned lists the old registry's instances that no node of the
// plan registered (registries.MetaNode), per service: what the plan's
// unowned policy applies to. At most maxPreviewServices services and
// maxPreviewIDs ids each are named; the rest are counted.
func previewUnowned(w io.Writer, p schema.Plan) error {
	reg, err := open.Open(registries.Kind(p.From.Kind), open.Settings{Address: p.From.Address}, nil)
	if err != nil {
		return err
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := map[string]bool{}
	for _, n := range p.Nodes {
		nodes[n.NodeID] = true
	}
	services, err := bridge.Unowned(ctx, reg, func(in registries.Instance) bool { return nodes[in.Metadata[registries.MetaNode]] })
	if err != nil {
		return fmt.Errorf("read %s at %s for unowned instances (-offline skips this): %w", p.From.Name, p.From.Address, err)
	}
	if len(services) == 0 {
		_, err := fmt.Fprintf(w, "\nunowned: none — every instance in %s was registered by a node of the plan\n", p.From.Name)
		return err
	}
	total := 0
	for _, s := range services {
		total += len(s.Unowned)
	}
	fmt.Fprintf(w, "\nunowned: %d instances in %s that no node of the plan registered (finalize: %s):\n", total, p.From.Name, p.UnownedPolicy())
	for i, s := range services {
		if i == maxPreviewServices {
			fmt.Fprintf(w, "  … and %d more services\n", len(services)-i)
			break
		}
		ids := make([]string, len(s.Unowned))
		for j, e := range s.Unowned {
			ids[j] = fmt.Sprintf("%s (%s:%d)", e.ID, e.Address, e.Port)
		}
		fmt.Fprintf(w, "  %s: %s\n", s.Service, schema.List(ids, maxPreviewLine))
	}
	return nil
}

const (
	maxPreviewServices = 50
	maxPreviewLine     = 400
)

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
