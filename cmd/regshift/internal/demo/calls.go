package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// callRow is what one consumer app's calls came to: how many each registry
// answered (the interface its agent resolved them through), how many failed,
// and the last failure's words.
type callRow struct {
	node     string
	answered map[string]int64 // registry kind -> calls resolved through it
	failed   int64
	lastErr  string
}

func (r callRow) total() int64 {
	n := r.failed
	for _, v := range r.answered {
		n += v
	}
	return n
}

// snapshot is the caller's counts so far.
func (c *caller) snapshot() callRow {
	c.viaMu.Lock()
	defer c.viaMu.Unlock()
	last, _ := c.lastErr.Load().(string)
	return callRow{node: c.node, answered: maps.Clone(c.via), failed: c.failed.Load(), lastErr: last}
}

// callKinds are the table's registry columns: first, in its order (the
// fleet's from and to), then any other kind that answered, sorted.
func callKinds(first []string, rows []callRow) []string {
	kinds := slices.Clone(first)
	var more []string
	for _, r := range rows {
		for k := range r.answered {
			if !slices.Contains(kinds, k) && !slices.Contains(more, k) {
				more = append(more, k)
			}
		}
	}
	slices.Sort(more)
	return append(kinds, more...)
}

// writeCallTable renders the calls per consumer as an aligned table: a row
// per consumer and one for all of them, a column per registry kind (kinds,
// see callKinds), then failed and total; below it each consumer's last
// failed call.
func writeCallTable(out io.Writer, kinds []string, rows []callRow) error {
	all := callRow{node: "all", answered: map[string]int64{}}
	for _, r := range rows {
		for k, n := range r.answered {
			all.answered[k] += n
		}
		all.failed += r.failed
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  consumer\t%s\tfailed\ttotal\n", strings.Join(kinds, "\t"))
	for _, r := range append(slices.Clone(rows), all) {
		fmt.Fprint(tw, "  ", r.node)
		for _, k := range kinds {
			fmt.Fprint(tw, "\t", r.answered[k])
		}
		fmt.Fprintf(tw, "\t%d\t%d\n", r.failed, r.total())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.lastErr == "" {
			continue
		}
		if _, err := fmt.Fprintf(out, "  %s's last failed call: %s\n", r.node, r.lastErr); err != nil {
			return err
		}
	}
	return nil
}
