package schema

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds of the strings the contract carries: every free-text field a
// record, event or decision holds is built within these, so a message never
// fails its schema because a list grew with the fleet.
const (
	MaxDetail = 1024 // a detail, reason or failure: within every schema's maxLength for such fields
)

// Truncate returns s cut to at most max bytes on a rune boundary, ending in
// "…" when it was cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// List joins items with ", " within max bytes: as many items as fit, then
// "… and N more" with the count of those left out. The full count is kept
// even when no item fits.
func List(items []string, max int) string {
	return ListFunc(len(items), func(i int) string { return items[i] }, ", ", max)
}

// ListFunc is List of n items joined by sep, item(i) giving the i-th: it
// asks only for the items it considers, so listing the first few of a
// million costs the few.
func ListFunc(n int, item func(i int) string, sep string, max int) string {
	var b strings.Builder
	for i := range n {
		it := item(i)
		s := ""
		if i > 0 {
			s = sep
		}
		rest := n - i
		more := ""
		if rest > 1 {
			more = fmt.Sprintf("%s… and %d more", sep, rest-1)
		}
		// Keep room to say how many are left out after this one.
		if b.Len()+len(s)+len(it)+len(more) > max {
			tail := fmt.Sprintf("… and %d more", rest)
			if i > 0 {
				tail = sep + tail
			}
			if b.Len()+len(tail) > max {
				return Truncate(fmt.Sprintf("%d items", n), max)
			}
			b.WriteString(tail)
			return b.String()
		}
		b.WriteString(s)
		b.WriteString(it)
	}
	return b.String()
}
