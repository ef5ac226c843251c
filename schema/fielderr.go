package schema

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxFieldProblems is how many violations one error names.
const maxFieldProblems = 3

var printer = message.NewPrinter(language.English)

// FieldProblems renders a schema violation the way every Go-side check of
// this project words its errors: the field path, then the problem, e.g.
// "plan.gates.soak_seconds: 9300000000 is above the maximum 604800". It
// names at most three violations, joined by "; ".
func FieldProblems(ve *jsonschema.ValidationError) string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) == maxFieldProblems {
			return
		}
		if len(e.Causes) == 0 {
			out = append(out, FieldPath(e.InstanceLocation)+": "+problem(e.ErrorKind))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(out, "; ")
}

// FieldPath writes a JSON location as a field path: a.b[2].c ("(body)" for
// the whole document).
func FieldPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "(body)"
	}
	return b.String()
}

// Problem wordings shared with the Go checks of the same bounds.
const (
	AboveMaximum = "%v is above the maximum %v"
	BelowMinimum = "%v is below the minimum %v"
)

func problem(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Minimum:
		return fmt.Sprintf(BelowMinimum, num(k.Got), num(k.Want))
	case *kind.Maximum:
		return fmt.Sprintf(AboveMaximum, num(k.Got), num(k.Want))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("%v, want above %v", num(k.Got), num(k.Want))
	case *kind.MinItems:
		return fmt.Sprintf("%d items, want at least %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("%d items, want at most %d", k.Got, k.Want)
	}
	return k.LocalizedString(printer)
}

// num prints a number as written: 9300000000, not 9.3e+09.
func num(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
