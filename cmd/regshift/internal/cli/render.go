package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/schema"
)

// lastDecisions is how many decisions status shows.
const lastDecisions = 10

// renderRollout writes one rollout: phase, plan, gates, registry, each
// wave with its nodes, and the last decisions with their inputs. Times are
// shown as the coordinator recorded them (UTC).
func renderRollout(w io.Writer, r *coordinator.Rollout) {
	var flags []string
	if r.Paused {
		flags = append(flags, "PAUSED (resume continues)")
	}
	if r.Held {
		flags = append(flags, "HELD at a gate (approve passes, resume re-evaluates, abort switches back)")
	}
	fmt.Fprintf(w, "rollout %s: %s, wave %d/%d", r.ID, r.Phase, r.Wave+1, len(r.Waves))
	if r.Stage != "" {
		fmt.Fprintf(w, ", stage %s", r.Stage)
	}
	fmt.Fprintln(w)
	for _, f := range flags {
		fmt.Fprintf(w, "  %s\n", f)
	}
	p := r.Plan
	fmt.Fprintf(w, "%s (%s) -> %s (%s), finalize %s, epoch %d\n", p.From.Name, p.From.Kind, p.To.Name, p.To.Kind, p.Finalize, r.Epoch)
	fmt.Fprintf(w, "created %s, as of %s\n\n", clock(r.Created), clock(r.Now))

	g := p.Gates
	fmt.Fprintf(w, "gates:    ack timeout %ds, soak %ds, activation grace %s, min healthy %.2f, min parity %.2f, failure budget %d, on failure %s\n",
		g.AckTimeoutSeconds, g.SoakSeconds, g.ActivationGrace(), g.MinHealthyRatio, g.MinParity, g.FailureBudget, g.OnFailure)
	reg := r.Registry
	if reg.At.IsZero() {
		fmt.Fprintf(w, "registry: not measured yet\n")
	} else {
		converged := ""
		if reg.BridgeRunning && !reg.BridgeConverged {
			converged = " (still converging: not evidence)"
		}
		fmt.Fprintf(w, "registry: reachable %s, healthy %s, bridge running %s, parity %.3f%s (at %s)%s\n", yesNo(reg.Reachable),
			yesNo(reg.Healthy), yesNo(reg.BridgeRunning), reg.Parity, converged, clock(reg.At), suffix(" — ", reg.Detail))
		if reg.Unowned > 0 || r.BridgeKept {
			kept := ""
			if r.BridgeKept {
				kept = "; the bridge is kept mirroring them (`regshift rollout finalize` again ends it)"
			}
			fmt.Fprintf(w, "unowned:  %d instances of %s no node of the plan registered (unowned: %s)%s%s\n", reg.Unowned, p.From.Name,
				p.UnownedPolicy(), kept, suffix(" — ", reg.UnownedDetail))
		}
	}

	target, label := coordinator.WaveTarget(r.Phase)
	for i, wv := range r.Waves {
		nodes := r.WaveNodes(i)
		reached := 0
		for _, n := range nodes {
			if n.Reached == target {
				reached++
			}
		}
		fmt.Fprintf(w, "\nwave %d/%d %s %s %d/%d %s%s\n", i+1, len(r.Waves), wv.Role, bar(reached, len(nodes)), reached, len(nodes), label, waveMark(r, i))
		var rows [][]string
		for _, n := range nodes {
			rows = append(rows, []string{"  " + n.ID, coordinator.ProgressName(n.Reached), string(n.Health), pending(n.Pending), suffix("failure: ", n.Failure)})
		}
		table(w, rows)
	}

	ds := r.Decisions
	fmt.Fprintf(w, "\ndecisions (last %d of %d):\n", min(len(ds), lastDecisions), len(ds))
	var rows [][]string
	for _, d := range ds[max(0, len(ds)-lastDecisions):] {
		rows = append(rows, []string{"  " + clock(d.At), string(d.Decision), decisionInputs(d)})
	}
	table(w, rows)
}

// waveMark says where a rolling rollout stands with wave i.
func waveMark(r *coordinator.Rollout, i int) string {
	if r.Phase != schema.PhaseRolling {
		return ""
	}
	switch {
	case i < r.Wave:
		return ", passed"
	case i > r.Wave:
		return ""
	case r.Held:
		return ", current: held at its gate"
	case !r.SoakStarted.IsZero():
		return ", current: soaking since " + clock(r.SoakStarted)
	}
	return ", current"
}

// bar is a progress bar of done out of n, at most 20 characters inside.
func bar(done, n int) string {
	width := min(n, 20)
	if n == 0 {
		return "[]"
	}
	full := done * width / n
	return "[" + strings.Repeat("#", full) + strings.Repeat("-", width-full) + "]"
}

// decisionInputs renders what a decision was made on: the check, observed
// against threshold, the nodes and the detail.
func decisionInputs(d coordinator.Decision) string {
	var parts []string
	if d.Check != "" {
		parts = append(parts, "check "+string(d.Check))
	}
	switch {
	case d.Observed != nil && d.Threshold != nil:
		parts = append(parts, fmt.Sprintf("observed %.3g vs threshold %.3g", *d.Observed, *d.Threshold))
	case d.Observed != nil:
		parts = append(parts, fmt.Sprintf("observed %.3g", *d.Observed))
	}
	if len(d.Nodes) > 0 {
		parts = append(parts, "nodes "+strings.Join(d.Nodes, ","))
	}
	if d.Detail != "" {
		parts = append(parts, d.Detail)
	}
	return strings.Join(parts, "; ")
}

// renderSummaries writes the list of rollouts.
func renderSummaries(w io.Writer, list []server.Summary) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no rollouts")
		return
	}
	rows := [][]string{{"ROLLOUT", "PHASE", "WAVE", "STOPPED", "NODES", "LAST DECISION"}}
	for _, s := range list {
		var stopped []string
		if s.Paused {
			stopped = append(stopped, "paused")
		}
		if s.Held {
			stopped = append(stopped, "held")
		}
		if s.Quarantined != "" {
			stopped = append(stopped, "quarantined")
		}
		var counts []string
		for _, k := range slices.Sorted(maps.Keys(s.Nodes)) {
			counts = append(counts, fmt.Sprintf("%s=%d", k, s.Nodes[k]))
		}
		last := "-"
		if d := s.Decision; d != nil {
			last = clock(d.At) + " " + string(d.Decision) + suffix(" ", string(d.Check))
		}
		rows = append(rows, []string{s.ID, string(s.Phase), fmt.Sprintf("%d/%d", s.Wave, s.Waves), orDash(strings.Join(stopped, ",")),
			orDash(strings.Join(counts, " ")), last})
	}
	table(w, rows)
}

// renderNodes writes every node: its rollout, wave, progress, health, the
// command it has not answered and why it failed.
func renderNodes(w io.Writer, nodes []server.NodeView) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no nodes: no rollout holds any")
		return
	}
	rows := [][]string{{"NODE", "ROLLOUT", "WAVE", "ROLES", "PROGRESS", "HEALTH", "FAILURE", "PENDING"}}
	for _, n := range nodes {
		rows = append(rows, []string{n.ID, n.Rollout, strconv.Itoa(n.Wave + 1), strings.Join(n.Roles, ","),
			coordinator.ProgressName(n.Reached), string(n.Health), orDash(n.Failure), pending(n.Pending)})
	}
	table(w, rows)
}

// table writes rows in aligned columns, two spaces apart, without trailing
// blanks.
func table(w io.Writer, rows [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// pending is a command sent and not answered yet: its kind, how often and
// since when it was sent.
func pending(p *coordinator.Pending) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%s sent %dx since %s (id %s)", p.Command.Kind, p.Sends, clock(p.FirstSent), p.Command.ID)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func suffix(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
