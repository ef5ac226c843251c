package nodeagent

import (
	"cmp"
	"slices"
	"strings"

	"github.com/regshift/regshift/schema"
)

// listing is one part of a detail: a label that says what it counts, and
// the items, written "label: a, b, … and N more".
type listing struct {
	label string
	items []string
}

// detailOf joins listings with "; " within schema.MaxDetail however long
// their lists are. Labels come whole, as they carry the counts; the lists
// share the room left, the shortest first so what one leaves over goes to
// the longer ones, and each says how many of its items it leaves out. A
// list none of whose items fits is left to its label. Listings with neither
// a label nor items are skipped.
func detailOf(ls ...listing) string {
	room := schema.MaxDetail
	var order []int // the listings with items, fewest first
	for i, l := range ls {
		room -= len("; ") + len(l.label)
		if len(l.items) > 0 {
			room -= len(": ")
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(ls[a].items), len(ls[b].items)) })
	lists := make([]string, len(ls))
	for n, i := range order {
		list := schema.List(ls[i].items, max(room, 0)/(len(order)-n))
		if strings.HasPrefix(list, ls[i].items[0]) {
			lists[i], room = list, room-len(list)
		}
	}
	var b strings.Builder
	for i, l := range ls {
		if l.label == "" && lists[i] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l.label)
		if lists[i] != "" {
			b.WriteString(": ")
			b.WriteString(lists[i])
		}
	}
	return schema.Truncate(b.String(), schema.MaxDetail)
}
