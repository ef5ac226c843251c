package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const dashboardFile = "regshift.json"

// datasourceUID is what every panel, query and query variable must name:
// the dashboard's Prometheus datasource variable, never a fixed uid.
const datasourceUID = "${datasource}"

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = []string{"job", "instance"}

// synthetic are the series Prometheus writes itself for each target; the
// dashboard may read them though no code registers them.
var synthetic = map[string]*family{"up": {name: "up", kind: "gauge", sources: []string{"prometheus"}}}

// notOnDashboard names the exported metrics the dashboard deliberately
// leaves out, and why; every other one must be read by some panel.
var notOnDashboard = map[string]string{}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *datasourceRef  `json:"datasource"`
	Targets     []target        `json:"targets"`
	Panels      []panel         `json:"panels"` // a collapsed row's
	GridPos     json.RawMessage `json:"gridPos"`
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
}

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	fams := exported(t)

	t.Run("layout", func(t *testing.T) {
		for _, p := range layoutProblems(d, raw) {
			t.Error(p)
		}
	})
	t.Run("queries", func(t *testing.T) {
		for _, p := range queryProblems(d, fams) {
			t.Error(p)
		}
	})
	t.Run("every exported metric has a panel", func(t *testing.T) {
		read := map[string]bool{}
		for _, q := range queries(d) {
			for _, name := range metricsRead(q.expr, fams) {
				read[name] = true
			}
		}
		for name, f := range fams {
			_, skipped := notOnDashboard[name]
			if !read[name] && !skipped {
				t.Errorf("%s (served by %s) is on no panel: add one to %s, or list it in notOnDashboard with the reason",
					name, strings.Join(f.sources, ", "), dashboardFile)
			}
		}
	})
}

// TestChecksCanFail feeds wrong queries, and a dashboard with one metric
// misspelt, through the same checks the dashboard passes.
func TestChecksCanFail(t *testing.T) {
	fams := exported(t)
	for _, tc := range []struct {
		name, expr string
		want       string // in a problem; "" for none
	}{
		{"counter rate", `sum by (outcome) (rate(regshift_coordinator_acks_total{job=~"$coordinator_job"}[$__rate_interval]))`, ""},
		{"histogram quantile", `histogram_quantile(0.99, sum by (topic, le) (rate(regshift_events_publish_duration_seconds_bucket[5m])))`, ""},
		{"histogram count", `sum(rate(regshift_coordinator_decision_duration_seconds_count[$__rate_interval]))`, ""},
		{"leader filter", `max by (phase) (regshift_coordinator_rollouts and on (job, instance) (regshift_coordinator_leader == 1))`, ""},
		{"target labels and up", `count(up{job=~"$agent_job", instance=~"$agent_instance"} == 0) or vector(0)`, ""},
		{"name matcher", `{__name__="regshift_coordinator_leader"}`, ""},
		{"comment and offset", "regshift_coordinator_leader offset 5m # the old leader", ""},

		{"misspelt metric", `sum(rate(regshift_coordinator_acks_totl[$__rate_interval]))`,
			"regshift_coordinator_acks_totl is not exported (closest: regshift_coordinator_acks_total)"},
		{"misspelt in a name matcher", `{__name__="regshift_coordinator_leadr"}`, "regshift_coordinator_leadr is not exported"},
		{"second selector misspelt", `regshift_coordinator_rollouts and on (job) regshift_coordinator_leder`, "regshift_coordinator_leder is not exported"},
		{"bucket of a gauge", `regshift_coordinator_leader_bucket`, "regshift_coordinator_leader is a gauge, it has no _bucket series"},
		{"bucket of a counter vector", `regshift_events_published_total_bucket`, "regshift_events_published_total is a counter"},
		{"bucket of a vector of unknown kind", `regshift_coordinator_acks_total_bucket`, "regshift_coordinator_acks_total is of a kind this test cannot tell"},
		{"label it does not have", `regshift_coordinator_rollouts{state="rolling"}`, `label "state" is not one of regshift_coordinator_rollouts's`},
		{"le on a counter", `regshift_events_published_total{le="1"}`, `label "le" is not one of`},
		{"grouping by a label no selector has", `sum by (phase) (regshift_coordinator_nodes)`, `grouping label "phase" is a label of no metric`},
		{"unknown function", `rat(regshift_coordinator_acks_total[5m])`, "unknown function rat"},
		{"regex name", `{__name__=~"regshift_.*"}`, "cannot be checked"},
		{"unterminated string", `regshift_coordinator_leader{job="x}`, "unterminated string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := checkExpr(tc.expr, fams)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Fatalf("%s: unexpected problems %q", tc.expr, problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("%s: want a problem with %q, got %q", tc.expr, tc.want, problems)
			}
		})
	}

	for _, tc := range []struct{ name, query, want string }{
		{"label values", "label_values(regshift_coordinator_leader, job)", ""},
		{"query result", "query_result(count by (job) (regshift_agent_app_checks_failing))", ""},
		{"label values of a misspelt metric", "label_values(regshift_coordinator_leadr, job)", "regshift_coordinator_leadr is not exported"},
		{"label values of a label it does not have", "label_values(regshift_coordinator_leader, phase)", `label "phase" is not one of`},
		{"label values over every series", "label_values(job)", "reads every series"},
	} {
		t.Run("variable "+tc.name, func(t *testing.T) {
			problems := checkVariableQuery(tc.query, fams)
			if tc.want == "" && len(problems) > 0 || tc.want != "" &&
				!slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("%s: want a problem with %q, got %q", tc.query, tc.want, problems)
			}
		})
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"misspelt metric", "regshift_coordinator_acks_total", "regshift_coordinator_acks_totl", "regshift_coordinator_acks_totl is not exported"},
		{"misspelt metric in a collapsed row", "regshift_coordinator_state_bytes_written_total", "regshift_coordinator_state_byte_written_total", "regshift_coordinator_state_byte_written_total is not exported"},
		{"misspelt metric in a variable", "label_values(regshift_coordinator_leader, job)", "label_values(regshift_coordinator_lead, job)", "regshift_coordinator_lead is not exported"},
	} {
		t.Run("dashboard with a "+tc.name, func(t *testing.T) {
			if !strings.Contains(string(raw), tc.old) {
				t.Fatalf("%s no longer holds %s: pick another", dashboardFile, tc.old)
			}
			d, err := decode([]byte(strings.ReplaceAll(string(raw), tc.old, tc.new)))
			if err != nil {
				t.Fatal(err)
			}
			problems := queryProblems(d, fams)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("want a problem with %q, got %q", tc.want, problems)
			}
		})
	}

	for _, tc := range []struct{ name, old, new, want string }{
		{"fixed datasource uid", `"uid": "${datasource}"`, `"uid": "P1809F7CD0C75ACF3"`, "not the ${datasource} variable"},
		{"duplicate panel id", `"id": 3,`, `"id": 2,`, "panel id 2 is used twice"},
		{"panel without a description", `"title": "Leading replicas",
      "description": "`, `"title": "Leading replicas",
      "x": "`, `has no description`},
	} {
		t.Run("dashboard with a "+tc.name, func(t *testing.T) {
			if !strings.Contains(string(raw), tc.old) {
				t.Fatalf("%s no longer holds %s: pick another", dashboardFile, tc.old)
			}
			bad := []byte(strings.Replace(string(raw), tc.old, tc.new, 1))
			d, err := decode(bad)
			if err != nil {
				t.Fatal(err)
			}
			problems := layoutProblems(d, bad)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("want a problem with %q, got %q", tc.want, problems)
			}
		})
	}
}

func decode(raw []byte) (dashboard, error) {
	var d dashboard
	if !json.Valid(raw) {
		return d, fmt.Errorf("%s is not valid JSON", dashboardFile)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("%s: %w", dashboardFile, err)
	}
	return d, nil
}

// allPanels lists the panels, those of collapsed rows included.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// layoutProblems checks what Grafana needs to import the dashboard into any
// instance: a title and uid, the datasource variable, every panel and query
// on it, unique panel ids, a title and a description on every panel.
func layoutProblems(d dashboard, raw []byte) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if d.Title == "" || d.UID == "" {
		bad("the dashboard needs a title and a uid")
	}
	if d.SchemaVersion < 36 {
		bad("schemaVersion %d: Grafana 10 and 11 write 38 and above", d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	}) {
		bad(`no datasource variable: want {"name": "datasource", "type": "datasource", "query": "prometheus"}`)
	}
	ids := map[int]bool{}
	for _, p := range allPanels(d.Panels) {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] {
			bad("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.GridPos) == 0 {
			bad("%s has no gridPos", where)
		}
		if p.Type == "row" {
			if p.Title == "" {
				bad("%s: a row without a title", where)
			}
			continue
		}
		if p.Title == "" || p.Description == "" {
			bad("%s has no title or has no description", where)
		}
		if !onVariable(p.Datasource) {
			bad("%s: its datasource is not the ${datasource} variable", where)
		}
		if len(p.Targets) == 0 {
			bad("%s has no query", where)
		}
		for _, tg := range p.Targets {
			if !onVariable(tg.Datasource) {
				bad("%s, query %s: its datasource is not the ${datasource} variable", where, tg.RefID)
			}
			if tg.Expr == "" {
				bad("%s, query %s: no expr", where, tg.RefID)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && !onVariable(v.Datasource) {
			bad("variable %s: its datasource is not the ${datasource} variable", v.Name)
		}
	}
	// Anything else that names a datasource (an annotation, a field added
	// later) must name the variable too.
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		bad("%v", err)
	}
	walk(generic, "", func(path string, v any) {
		if !strings.HasSuffix(path, ".datasource") {
			return
		}
		m, ok := v.(map[string]any)
		if !ok || m["uid"] != datasourceUID {
			bad("%s: %v is not the ${datasource} variable", path, v)
		}
	})
	return out
}

func onVariable(ds *datasourceRef) bool {
	return ds != nil && ds.UID == datasourceUID && ds.Type == "prometheus"
}

func walk(v any, path string, f func(string, any)) {
	f(path, v)
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			walk(x, path+"."+k, f)
		}
	case []any:
		for i, x := range v {
			walk(x, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

// located is a query and where the dashboard has it.
type located struct {
	where, expr string
	variable    bool // a query variable's query (label_values, query_result)
}

func queries(d dashboard) []located {
	var out []located
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, located{where: fmt.Sprintf("panel %d %q, query %s", p.ID, p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := variableQuery(v)
		out = append(out, located{where: "variable " + v.Name, expr: q, variable: true})
		if v.Definition != "" && v.Definition != q {
			out = append(out, located{where: "variable " + v.Name + " (definition)", expr: v.Definition, variable: true})
		}
	}
	return out
}

// variableQuery is a query variable's query: a string, or since Grafana 10
// an object with the string in "query".
func variableQuery(v variable) string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

func queryProblems(d dashboard, fams map[string]*family) []string {
	var out []string
	for _, q := range queries(d) {
		check := checkExpr
		if q.variable {
			check = checkVariableQuery
		}
		for _, p := range check(q.expr, fams) {
			out = append(out, q.where+": "+p)
		}
	}
	return out
}

var (
	labelValuesRE = regexp.MustCompile(`^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)\s*$`)
	queryResultRE = regexp.MustCompile(`^query_result\((.+)\)\s*$`)
)

// checkVariableQuery checks a query variable's query: label_values(selector,
// label) (the label must be the selector's), query_result(expr), or PromQL.
func checkVariableQuery(q string, fams map[string]*family) []string {
	q = strings.TrimSpace(q)
	if m := queryResultRE.FindStringSubmatch(q); m != nil {
		return checkExpr(m[1], fams)
	}
	if strings.HasPrefix(q, "label_names(") || strings.HasPrefix(q, "metrics(") {
		return []string{q + ": cannot be checked against the exported metrics"}
	}
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return checkExpr(q, fams)
	}
	if m[1] == "" {
		return []string{q + ": reads every series of every target; name a metric"}
	}
	out := checkExpr(m[1], fams)
	pq, err := parseQuery(m[1])
	if err != nil {
		return out
	}
	for _, sel := range pq.selectors {
		if f, suffix, ok := resolve(sel.metric, fams); ok && !slices.Contains(allowedLabels(f, suffix), m[2]) {
			out = append(out, fmt.Sprintf("label %q is not one of %s's (%s)", m[2], sel.metric, strings.Join(allowedLabels(f, suffix), ", ")))
		}
	}
	return out
}

// checkExpr checks that every metric a PromQL expression reads is exported,
// with the labels its matchers name, and that its grouping labels belong to
// one of the metrics it reads.
func checkExpr(expr string, fams map[string]*family) []string {
	q, err := parseQuery(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	known := map[string]bool{}
	for _, sel := range q.selectors {
		f, suffix, ok := resolve(sel.metric, fams)
		if !ok {
			out = append(out, unknownMetric(sel.metric, fams))
			continue
		}
		allowed := allowedLabels(f, suffix)
		for _, l := range sel.labels {
			if !slices.Contains(allowed, l) {
				out = append(out, fmt.Sprintf("%s: label %q is not one of %s's (%s)", expr, l, sel.metric, strings.Join(allowed, ", ")))
			}
		}
		for _, l := range allowed {
			known[l] = true
		}
	}
	for _, l := range q.grouping {
		if !known[l] {
			out = append(out, fmt.Sprintf("%s: grouping label %q is a label of no metric the query reads", expr, l))
		}
	}
	return out
}

// metricsRead returns the exported metrics expr reads (a histogram's
// _bucket, _sum and _count count for the histogram).
func metricsRead(expr string, fams map[string]*family) []string {
	if m := queryResultRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	} else if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	q, err := parseQuery(expr)
	if err != nil {
		return nil
	}
	var out []string
	for _, sel := range q.selectors {
		if f, _, ok := resolve(sel.metric, fams); ok {
			out = append(out, f.name)
		}
	}
	return out
}

// resolve finds the family a series name belongs to: the name itself, or
// a histogram's _bucket, _sum or _count, a summary's _sum or _count.
func resolve(name string, fams map[string]*family) (*family, string, bool) {
	if f := fams[name]; f != nil {
		return f, "", true
	}
	if f := synthetic[name]; f != nil {
		return f, "", true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		f := fams[strings.TrimSuffix(name, suffix)]
		if f == nil || !strings.HasSuffix(name, suffix) {
			continue
		}
		if f.kind == "histogram" || f.kind == "summary" && suffix != "_bucket" {
			return f, suffix, true
		}
	}
	return nil, "", false
}

func unknownMetric(name string, fams map[string]*family) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(name, suffix)
		if f := fams[base]; f != nil && base != name {
			if f.kind == "" {
				return fmt.Sprintf("%s: %s is of a kind this test cannot tell (a vector the runtime registers itself), so it has no %s series here",
					name, base, suffix)
			}
			return fmt.Sprintf("%s: %s is a %s, it has no %s series", name, base, f.kind, suffix)
		}
	}
	return fmt.Sprintf("%s is not exported (closest: %s)", name, closest(name, fams))
}

// allowedLabels are the labels a series of f may be matched on.
func allowedLabels(f *family, suffix string) []string {
	out := append(slices.Clone(f.labels), targetLabels...)
	switch {
	case suffix == "_bucket":
		out = append(out, "le")
	case suffix == "" && f.kind == "summary":
		out = append(out, "quantile")
	}
	return out
}

func closest(name string, fams map[string]*family) string {
	best, bestD := "", -1
	for n := range fams {
		if d := distance(name, n); bestD < 0 || d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
