package grafana

import (
	"fmt"
	"strings"
)

// The dashboard's queries are read by a small scanner rather than by
// Prometheus' own parser: github.com/prometheus/prometheus/promql/parser
// would add the whole Prometheus module (and newer grpc, otel and zap) to
// go.mod for one test. The scanner knows PromQL's lexical shape — strings,
// numbers and durations, ranges, label matchers, keywords, functions — plus
// Grafana's variables, and refuses what it does not recognise rather than
// guess.

// selector is one series selector of a query: a metric name and the label
// names its matchers use.
type selector struct {
	metric string
	labels []string
}

// query is what a PromQL expression reads: its selectors, and the label
// names of its by, without, on, ignoring, group_left and group_right
// clauses.
type query struct {
	selectors []selector
	grouping  []string
}

// parseQuery scans a PromQL expression, as written in a Grafana panel
// ($variables and ${variables} allowed where a value or a range goes).
func parseQuery(expr string) (query, error) {
	s := &scanner{src: expr}
	var q query
	for {
		s.skipSpace()
		if s.eof() {
			return q, nil
		}
		c := s.peek()
		var err error
		switch {
		case c == '"' || c == '\'' || c == '`':
			_, err = s.str()
		case c == '$':
			err = s.variable()
		case c == '[':
			err = s.rangeOrVariable()
		case c == '{':
			var sel selector
			if sel, err = s.matchers(); err == nil {
				if sel.metric == "" {
					err = s.errorf("a selector that names no metric cannot be checked")
				}
				q.selectors = append(q.selectors, sel)
			}
		case isDigit(c) || c == '.' && isDigit(s.at(1)):
			s.number()
		case isIdentStart(c):
			err = s.word(&q)
		case strings.IndexByte("()+-*/%^=!<>,@:", c) >= 0:
			s.i++
		default:
			err = s.errorf("unexpected %q", c)
		}
		if err != nil {
			return query{}, fmt.Errorf("%q: %w", expr, err)
		}
	}
}

// word handles an identifier: a keyword, a function or a metric name.
func (s *scanner) word(q *query) error {
	w := s.ident()
	lw := strings.ToLower(w)
	next := s.nextNonSpace()
	switch {
	case groupingKeywords[lw]:
		if next != '(' {
			if lw == "group_left" || lw == "group_right" {
				return nil // without a label list
			}
			return s.errorf("%s without a label list", w)
		}
		labels, err := s.labelList()
		q.grouping = append(q.grouping, labels...)
		return err
	case operatorKeywords[lw], lw == "inf", lw == "nan":
		return nil
	case aggregations[lw] && (next == '(' || s.nextWordIs("by", "without")):
		return nil
	case next == '(':
		if !functions[w] {
			return s.errorf("unknown function %s", w)
		}
		return nil
	}
	sel := selector{metric: w}
	s.skipSpace()
	if s.peek() == '{' {
		m, err := s.matchers()
		if err != nil {
			return err
		}
		if m.metric != "" {
			return s.errorf("%s names its metric twice", w)
		}
		sel.labels = m.labels
	}
	q.selectors = append(q.selectors, sel)
	return nil
}

// matchers reads {label op "value", ...}. A quoted name alone, or
// __name__="x", names the metric; a name matched by a regular expression
// is refused, as it cannot be checked.
func (s *scanner) matchers() (selector, error) {
	var sel selector
	s.i++ // {
	for {
		s.skipSpace()
		if s.peek() == '}' {
			s.i++
			return sel, nil
		}
		var name string
		switch c := s.peek(); {
		case c == '"' || c == '\'' || c == '`':
			v, err := s.str()
			if err != nil {
				return sel, err
			}
			s.skipSpace()
			if c := s.peek(); c != '=' && c != '!' {
				sel.metric = v // {"metric.name"}
				break
			}
			name = v
		case isIdentStart(c):
			name = s.ident()
		default:
			return sel, s.errorf("unexpected %q in label matchers", c)
		}
		if name != "" {
			s.skipSpace()
			op := s.matchOp()
			if op == "" {
				return sel, s.errorf("label %s without a match operator", name)
			}
			s.skipSpace()
			if c := s.peek(); c != '"' && c != '\'' && c != '`' {
				return sel, s.errorf("label %s: the value is not a string", name)
			}
			v, err := s.str()
			if err != nil {
				return sel, err
			}
			switch {
			case name != "__name__":
				sel.labels = append(sel.labels, name)
			case op != "=" || strings.Contains(v, "$"):
				return sel, s.errorf("__name__%s%q cannot be checked: name the metric", op, v)
			default:
				sel.metric = v
			}
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
		default:
			return sel, s.errorf("unexpected %q in label matchers", s.peek())
		}
	}
}

// labelList reads (a, b, …) after by, without, on, ignoring, group_left
// or group_right.
func (s *scanner) labelList() ([]string, error) {
	s.skipSpace()
	s.i++ // (
	var out []string
	for {
		s.skipSpace()
		switch c := s.peek(); {
		case c == ')':
			s.i++
			return out, nil
		case c == ',':
			s.i++
		case c == '"' || c == '\'':
			v, err := s.str()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case isIdentStart(c):
			out = append(out, s.ident())
		default:
			return nil, s.errorf("unexpected %q in a label list", c)
		}
	}
}

type scanner struct {
	src string
	i   int
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte { return s.at(0) }

func (s *scanner) at(k int) byte {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return 0
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("at %d: %s", s.i, fmt.Sprintf(format, args...))
}

// skipSpace skips blanks and # comments.
func (s *scanner) skipSpace() {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			s.i++
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *scanner) nextNonSpace() byte {
	save := s.i
	s.skipSpace()
	c := s.peek()
	s.i = save
	return c
}

func (s *scanner) nextWordIs(words ...string) bool {
	save := s.i
	defer func() { s.i = save }()
	s.skipSpace()
	if !isIdentStart(s.peek()) {
		return false
	}
	w := strings.ToLower(s.ident())
	for _, x := range words {
		if w == x {
			return true
		}
	}
	return false
}

func (s *scanner) ident() string {
	start := s.i
	for !s.eof() && isIdentPart(s.peek()) {
		s.i++
	}
	return s.src[start:s.i]
}

// str reads a quoted string and returns its text (escapes left as they are).
func (s *scanner) str() (string, error) {
	q := s.peek()
	s.i++
	start := s.i
	for !s.eof() {
		c := s.peek()
		switch {
		case c == '\\' && q != '`':
			s.i += 2
		case c == q:
			s.i++
			return s.src[start : s.i-1], nil
		default:
			s.i++
		}
	}
	return "", s.errorf("unterminated string")
}

// number skips a number or a duration: 0.99, 1e-3, 0x1f, 5m, 1h30m, Inf.
func (s *scanner) number() {
	start := s.i
	for !s.eof() {
		c := s.peek()
		switch {
		case isIdentPart(c) || c == '.':
			s.i++
		case (c == '+' || c == '-') && (s.src[s.i-1] == 'e' || s.src[s.i-1] == 'E') &&
			!strings.HasPrefix(strings.ToLower(s.src[start:]), "0x"):
			s.i++
		default:
			return
		}
	}
}

// variable skips a Grafana variable: $name, $__rate_interval, ${name},
// ${name:format}.
func (s *scanner) variable() error {
	s.i++ // $
	if s.peek() == '{' {
		end := strings.IndexByte(s.src[s.i:], '}')
		if end < 0 {
			return s.errorf("unterminated ${")
		}
		s.i += end + 1
		return nil
	}
	if s.ident() == "" {
		return s.errorf("$ without a variable name")
	}
	return nil
}

// rangeOrVariable skips a range or subquery, [5m], [$__rate_interval],
// [1h:5m], or Grafana's old [[variable]].
func (s *scanner) rangeOrVariable() error {
	closing := "]"
	if s.at(1) == '[' {
		closing = "]]"
	}
	end := strings.Index(s.src[s.i:], closing)
	if end < 0 {
		return s.errorf("unterminated [")
	}
	s.i += end + len(closing)
	return nil
}

func (s *scanner) matchOp() string {
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(s.src[s.i:], op) {
			s.i += len(op)
			return op
		}
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }

var groupingKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")

var operatorKeywords = set("and", "or", "unless", "bool", "offset", "atan2")

var aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio")

// functions are PromQL's functions and aggregations, and start() and end()
// of the @ modifier.
var functions = set("abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time",
	"day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv",
	"double_exponential_smoothing", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
	"histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
	"increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
	"mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
	"present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh",
	"sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
	"sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
	"quantile", "limitk", "limit_ratio", "start", "end")

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
