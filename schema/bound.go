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
	var b strings.Builder
	for i, it := range items {
		sep := ""
		if i > 0 {
			sep = ", "
		}
		rest := len(items) - i
		more := ""
		if rest > 1 {
			more = fmt.Sprintf(", … and %d more", rest-1)
		}
		// Keep room to say how many are left out after this one.
		if b.Len()+len(sep)+len(it)+len(more) > max {
			tail := fmt.Sprintf("… and %d more", rest)
			if i > 0 {
				tail = ", " + tail
			}
			if b.Len()+len(tail) > max {
				return Truncate(fmt.Sprintf("%d items", len(items)), max)
			}
			b.WriteString(tail)
			return b.String()
		}
		b.WriteString(sep)
		b.WriteString(it)
	}
	return b.String()
}
