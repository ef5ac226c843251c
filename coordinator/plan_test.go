package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestPlanWaves(t *testing.T) {
	p, err := ParsePlan(mustRead(t, "testdata/plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range PlanWaves(p) {
		got = append(got, w.Role+":"+strings.Join(w.Nodes, ","))
	}
	want := "provider:p1 provider:p2 provider:p3 consumer:c1 consumer:c2 consumer:c3"
	if strings.Join(got, " ") != want {
		t.Fatalf("waves %v, want %s", got, want)
	}
	p.Waves.Canary, p.Waves.Percentages = 0, []int{10, 100}
	got = got[:0]
	for _, w := range PlanWaves(p) {
		got = append(got, w.Role+":"+strings.Join(w.Nodes, ","))
	}
	// ceil(10% of 3) = 1 node, then the rest.
	if want := "provider:p1 provider:p2,p3 consumer:c1 consumer:c2,c3"; strings.Join(got, " ") != want {
		t.Fatalf("waves %v, want %s", got, want)
	}
}

// TestPreviewGolden pins `regshift rollout preview` output (-update rewrites).
func TestPreviewGolden(t *testing.T) {
	p, err := ParsePlan(mustRead(t, "testdata/plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Preview(&buf, p); err != nil {
		t.Fatal(err)
	}
	golden := "testdata/preview.golden"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("preview differs from %s (run with -update to accept):\n%s", golden, buf.String())
	}
}

func TestPlanErrorsNameTheField(t *testing.T) {
	raw, err := os.ReadFile("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	tests := []struct{ old, new, field string }{
		{"  name: consul", "  name: zookeeper", "to.name"},
		{"  kind: consul", "  kind: nacos", "to.kind"},
		{"  address: 127.0.0.1:8500", "  address: ''", "to.address"},
		{"    url: http://127.0.0.1:7080/packages/consul.tgz", "    url: ftp://x", "to.package.url"},
		{"    digest: sha256:4f8b", "    digest: md5:4f8b", "to.package.digest"},
		{"  - {node_id: p2, roles: [provider]}", "  - {node_id: p1, roles: [provider]}", "nodes[1].node_id"},
		{"  - {node_id: c1, roles: [consumer]}", "  - {node_id: c1, roles: [router]}", "nodes[3].roles[0]"},
		{"  - {node_id: c1, roles: [consumer]}", "  - {node_id: c1, roles: []}", "nodes[3].roles"},
		{"  percentages: [50, 100]", "  percentages: [50, 90]", "waves.percentages"},
		{"  percentages: [50, 100]", "  percentages: [60, 50, 100]", "waves.percentages[1]"},
		{"  canary: 1", "  canary: -1", "waves.canary"},
		{"  ack_timeout_seconds: 30", "  ack_timeout_seconds: 0", "gates.ack_timeout_seconds"},
		{"  min_healthy_ratio: 1.0", "  min_healthy_ratio: 1.5", "gates.min_healthy_ratio"},
		{"  min_parity: 0.99", "  min_parity: -1", "gates.min_parity"},
		{"  failure_budget: 0", "  failure_budget: -2", "gates.failure_budget"},
		{"  on_failure: switch-back", "  on_failure: retry", "gates.on_failure"},
		{"finalize: manual", "finalize: never", "finalize"},
		{"finalize: manual", "finalize: manual\nfinalise: x", `unknown field "finalise"`},
		{"  soak_seconds: 10", "  soak_seconds: ten", "gates.soak_seconds"},
		// Addresses are parsed as their registry kind writes them.
		{"  address: 127.0.0.1:2181\n", "  address: not an address at all\n", `plan.from.address: "not an address at all": server 1`},
		{"  address: 127.0.0.1:2181\n", "  address: 127.0.0.1:2181//services\n", `plan.from.address: "127.0.0.1:2181//services": base path`},
		{"  address: 127.0.0.1:8500", "  address: not an address at all", `plan.to.address: "not an address at all": not host:port`},
		{"  address: 127.0.0.1:8500", "  address: http://127.0.0.1:8500", `plan.to.address: "http://127.0.0.1:8500": a URL`},
		{"  address: 127.0.0.1:8500", "  address: 127.0.0.1:0", `plan.to.address: "127.0.0.1:0": port "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if !strings.Contains(doc, tt.old) {
				t.Fatalf("plan lacks %q", tt.old)
			}
			_, err := ParsePlan([]byte(strings.Replace(doc, tt.old, tt.new, 1)))
			if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestPlanBoundsMatchTheSchema: every count and duration has the same bound
// in the Go check and in the JSON Schema, refused up front with the same
// words: the field path and the problem. (9,300,000,000 seconds overflowed
// time.Duration, and the soak was skipped.)
func TestPlanBoundsMatchTheSchema(t *testing.T) {
	raw, err := os.ReadFile("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := ParsePlan(raw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		set  func(p *schema.Plan)
		want string
	}{
		{func(p *schema.Plan) { p.Gates.SoakSeconds = 9_300_000_000 }, "plan.gates.soak_seconds: 9300000000 is above the maximum 604800"},
		{func(p *schema.Plan) { p.Gates.AckTimeoutSeconds = 9_300_000_000 }, "plan.gates.ack_timeout_seconds: 9300000000 is above the maximum 604800"},
		{func(p *schema.Plan) { p.Gates.AckTimeoutSeconds = 9 }, "plan.gates.ack_timeout_seconds: 9 is below the minimum 10"},
		{func(p *schema.Plan) { p.Gates.SoakSeconds = -1 }, "plan.gates.soak_seconds: -1 is below the minimum 0"},
		{func(p *schema.Plan) { p.Gates.FailureBudget = 100_001 }, "plan.gates.failure_budget: 100001 is above the maximum 100000"},
		{func(p *schema.Plan) { p.Gates.ActivationGraceSeconds = new(3601) }, "plan.gates.activation_grace_seconds: 3601 is above the maximum 3600"},
		{func(p *schema.Plan) { p.Gates.ActivationGraceSeconds = new(-1) }, "plan.gates.activation_grace_seconds: -1 is below the minimum 0"},
		{func(p *schema.Plan) { p.Waves.MaxInFlight = 0 }, "plan.waves.max_in_flight: 0 is below the minimum 1"},
		{func(p *schema.Plan) { p.Waves.MaxInFlight = 100_001 }, "plan.waves.max_in_flight: 100001 is above the maximum 100000"},
		{func(p *schema.Plan) { p.Waves.Canary = 100_001 }, "plan.waves.canary: 100001 is above the maximum 100000"},
		{func(p *schema.Plan) { p.Waves.Percentages = slices.Repeat([]int{100}, 101) }, "plan.waves.percentages: 101 items, want at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			p := base
			p.Waves.Percentages = slices.Clone(base.Waves.Percentages)
			tt.set(&p)
			if err := ValidatePlan(p); !errors.Is(err, ErrPlan) || err.Error() != ErrPlan.Error()+": "+tt.want {
				t.Errorf("Go check: %v\nwant %s", err, tt.want)
			}
			if err := validateWire(p); !errors.Is(err, ErrPlan) || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Errorf("schema: %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestPlanUnowned: both checks refuse an unknown unowned policy, naming the
// field; an empty one is refuse.
func TestPlanUnowned(t *testing.T) {
	p := testPlan(t)
	if p.UnownedPolicy() != schema.UnownedRefuse {
		t.Fatalf("default policy %q, want refuse", p.UnownedPolicy())
	}
	p.Unowned = "mirror"
	if err := ValidatePlan(p); err == nil || !strings.Contains(err.Error(), `plan.unowned: "mirror", want keep-bridge or refuse`) {
		t.Errorf("Go check: %v", err)
	}
	if err := validateWire(p); err == nil || !strings.Contains(err.Error(), "plan.unowned: value must be one of") {
		t.Errorf("schema: %v", err)
	}
	p.Unowned = schema.UnownedKeepBridge
	if err := ValidatePlan(p); err != nil {
		t.Errorf("keep-bridge refused: %v", err)
	}
}

// TestSchemaKindsAreTheRegistries: the kinds the JSON Schema lets a plan
// and a hello name are exactly the kinds regshift opens.
func TestSchemaKindsAreTheRegistries(t *testing.T) {
	var want []string
	for _, k := range registries.Kinds() {
		want = append(want, string(k))
	}
	for file, path := range map[string][]string{
		"defs.v1.json":        {"$defs", "interface", "properties", "kind", "enum"},
		"event.hello.v1.json": {"properties", "interfaces", "items", "properties", "kind", "enum"},
	} {
		b, err := fs.ReadFile(schema.Files(), file)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		var got []string
		for _, e := range v.([]any) {
			got = append(got, e.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s %s: %v, want registries.Kinds() %v", file, strings.Join(path, "."), got, want)
		}
	}
}
