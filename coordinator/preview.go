package coordinator

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/regshift/regshift/schema"
)

// Preview writes what a rollout of p would do, without sending anything:
// the interfaces, the waves with their nodes, the gates, what a failure
// switches back and what finalize removes.
func Preview(w io.Writer, p schema.Plan) error {
	waves := PlanWaves(p)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "rollout: %s (%s at %s) -> %s (%s at %s)\n", p.From.Name, p.From.Kind, p.From.Address, p.To.Name, p.To.Kind, p.To.Address)
	fmt.Fprintf(tw, "package: %s\n         %s\n", p.To.Package.URL, p.To.Package.Digest)
	fmt.Fprintf(tw, "\nprepare: check %s answers and is healthy, start the %s -> %s bridge, measure parity (min %.2f)\n",
		p.To.Name, p.From.Name, p.To.Name, p.Gates.MinParity)
	fmt.Fprintln(tw, "\nWAVE\tROLE\tNODES\tCOMMANDS")
	total := 0
	for i, wv := range waves {
		total += len(wv.Nodes)
		name := fmt.Sprint(i + 1)
		if i == 0 || waves[i-1].Role != wv.Role {
			if p.Waves.Canary > 0 {
				name += " (canary)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d: %s\tinstall %s, activate %s\n", name, wv.Role, len(wv.Nodes), strings.Join(wv.Nodes, " "), p.To.Name, p.To.Name)
	}
	inflight := "no limit"
	if p.Waves.MaxInFlight > 0 {
		inflight = fmt.Sprint(p.Waves.MaxInFlight)
	}
	g := p.Gates
	fmt.Fprintf(tw, "\nnodes: %d in %d waves, max in flight %s\n", total, len(waves), inflight)
	fmt.Fprintf(tw, "\ngates after each wave:\n")
	fmt.Fprintf(tw, "  ack timeout\t%ds (an unanswered node is unknown, never healthy)\n", g.AckTimeoutSeconds)
	fmt.Fprintf(tw, "  soak\t%ds\n", g.SoakSeconds)
	grace := "default"
	if g.ActivationGraceSeconds != nil {
		grace = "from the plan"
	}
	fmt.Fprintf(tw, "  activation grace\t%s (%s; a node's critical reports count only after it)\n", g.ActivationGrace(), grace)
	fmt.Fprintf(tw, "  healthy on %s\t>= %.2f of the nodes moved so far\n", p.To.Name, g.MinHealthyRatio)
	fmt.Fprintf(tw, "  parity %s vs %s\t>= %.2f (instance sets)\n", p.To.Name, p.From.Name, g.MinParity)
	fmt.Fprintf(tw, "  failure budget\t%d per wave\n", g.FailureBudget)
	fmt.Fprintf(tw, "  on failure\t%s\n", g.OnFailure)
	fmt.Fprintf(tw, "\nrollback scope: every node sent a command (up to all %d) switches back to %s: consumers first, then providers\n", total, p.From.Name)
	fmt.Fprintf(tw, "commit: %s primary on every node, %s dormant (switch back still instant)\n", p.To.Name, p.From.Name)
	fmt.Fprintf(tw, "finalize (%s): uninstall %s, consumers first, then providers; stop the bridge; irreversible\n", p.Finalize, p.From.Name)
	return tw.Flush()
}
