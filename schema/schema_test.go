package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regshift/regshift/schema"
)

func example(t testing.TB, s schema.Spec) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "examples", s.File()))
	if err != nil {
		t.Fatalf("every type needs an example: %v", err)
	}
	return b
}

// TestExamplesValidateAndRoundTrip checks each type's example against its
// schema and that decoding it into the Go type and encoding it again gives
// the same bytes.
func TestExamplesValidateAndRoundTrip(t *testing.T) {
	if got := len(schema.Specs()); got != 18 {
		t.Fatalf("%d types registered, want 18", got)
	}
	for _, s := range schema.Specs() {
		t.Run(s.Type, func(t *testing.T) {
			b := example(t, s)
			if err := schema.Validate(s.Type, b); err != nil {
				t.Fatalf("example does not validate: %v", err)
			}
			m, err := schema.Decode(s.Type, b)
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageType() != s.Type {
				t.Fatalf("decoded %s into %T (type %s)", s.Type, m, m.MessageType())
			}
			if m.PartitionKey() == "" {
				t.Errorf("%T has no partition key", m)
			}
			out, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			if !bytes.Equal(out, b) {
				t.Errorf("round trip changed the JSON:\n--- example\n%s\n--- re-encoded\n%s", b, out)
			}
			compact, err := schema.Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact, want.Bytes()) {
				t.Errorf("Encode = %s, want %s", compact, want.Bytes())
			}
		})
	}
}

// TestEverySchemaFileHasAType keeps the public files and the Go types in step.
func TestEverySchemaFileHasAType(t *testing.T) {
	known := map[string]bool{"defs.v1.json": true}
	for _, s := range schema.Specs() {
		known[s.File()] = true
	}
	names, err := fs.Glob(schema.Files(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(known) {
		t.Errorf("%d schema files, %d known", len(names), len(known))
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("schema file %s has no Go type", n)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		want error
	}{
		{schema.TypeInstall, nil},
		{"regshift.command.install.v2", schema.ErrUnsupportedVersion},
		{"regshift.command.install.v0", schema.ErrUnsupportedVersion},
		{"regshift.command.install", schema.ErrUnknownType},
		{"regshift.command.reboot.v1", schema.ErrUnknownType},
		{"", schema.ErrUnknownType},
		{"com.example.thing.v1", schema.ErrUnknownType},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			s, err := schema.Lookup(tc.typ)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Lookup(%q) = %v, want %v", tc.typ, err, tc.want)
			}
			if err == nil && (s.Class != schema.ClassCommand || s.Name != "install" || s.Version != 1) {
				t.Errorf("spec = %+v", s)
			}
		})
	}
}

// TestValidateRejects lists bodies each schema must refuse, made by editing
// the valid examples one field at a time.
func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name, typ  string
		edit       func(map[string]any)
		raw        string
		crossField bool // a rule between fields: Decode refuses it, the schema cannot
	}{
		{name: "not JSON", typ: schema.TypeInstall, raw: `{"node_id":`},
		{name: "trailing data", typ: schema.TypePause, raw: `{"rollout_id":"r","requested_by":"a"} {}`},
		{name: "array body", typ: schema.TypePause, raw: `[]`},
		{name: "missing node id", typ: schema.TypeInstall, edit: func(m map[string]any) { delete(m, "node_id") }},
		{name: "missing package digest", typ: schema.TypeActivate, edit: func(m map[string]any) { delete(m, "package_digest") }},
		{name: "missing expires at", typ: schema.TypeUninstall, edit: func(m map[string]any) { delete(m, "expires_at") }},
		{name: "unknown field", typ: schema.TypeResync, edit: func(m map[string]any) { m["reboot"] = true }},
		{name: "install digest differs from its package's", typ: schema.TypeInstall, edit: func(m map[string]any) {
			m["package_digest"] = "sha256:" + strings.Repeat("0", 64)
		}, crossField: true},
		{name: "bad digest", typ: schema.TypeInstall, edit: func(m map[string]any) { m["package_digest"] = "md5:abc" }},
		{name: "bad timestamp", typ: schema.TypeInstall, edit: func(m map[string]any) { m["issued_at"] = "yesterday" }},
		{name: "epoch zero", typ: schema.TypeSwitchBack, edit: func(m map[string]any) { m["epoch"] = 0 }},
		{name: "epoch not integer", typ: schema.TypeSwitchBack, edit: func(m map[string]any) { m["epoch"] = 1.5 }},
		{name: "bad node id", typ: schema.TypeInstall, edit: func(m map[string]any) { m["node_id"] = "../etc" }},
		{name: "failed ack without reason", typ: schema.TypeAck, edit: func(m map[string]any) { delete(m, "reason") }},
		{name: "rejected ack with empty reason", typ: schema.TypeAck, edit: func(m map[string]any) { m["outcome"] = "rejected"; m["reason"] = "" }},
		{name: "unknown ack outcome", typ: schema.TypeAck, edit: func(m map[string]any) { m["outcome"] = "maybe" }},
		{name: "unknown health status", typ: schema.TypeHealth, edit: func(m map[string]any) {
			m["interfaces"].([]any)[0].(map[string]any)["status"] = "fine"
		}},
		{name: "unknown interface state", typ: schema.TypeHello, edit: func(m map[string]any) {
			m["interfaces"].([]any)[0].(map[string]any)["state"] = "half"
		}},
		{name: "plan without nodes", typ: schema.TypeCreateRollout, edit: func(m map[string]any) {
			m["plan"].(map[string]any)["nodes"] = []any{}
		}},
		{name: "plan with unknown on_failure", typ: schema.TypeCreateRollout, edit: func(m map[string]any) {
			m["plan"].(map[string]any)["gates"].(map[string]any)["on_failure"] = "ignore"
		}},
		{name: "request without requester", typ: schema.TypeAbort, edit: func(m map[string]any) { delete(m, "requested_by") }},
		{name: "rollout record with unknown phase", typ: schema.TypeRolloutRecord, edit: func(m map[string]any) { m["phase"] = "done" }},
		{name: "epoch record without leader", typ: schema.TypeEpochRecord, edit: func(m map[string]any) { delete(m, "leader") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.raw)
			if tc.edit != nil {
				s, _ := schema.Lookup(tc.typ)
				var m map[string]any
				if err := json.Unmarshal(example(t, s), &m); err != nil {
					t.Fatal(err)
				}
				tc.edit(m)
				var err error
				if body, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			if err := schema.Validate(tc.typ, body); tc.crossField != (err == nil) || (err != nil && !errors.Is(err, schema.ErrInvalid)) {
				t.Fatalf("Validate = %v, want ErrInvalid (unless a cross-field rule)", err)
			}
			if _, err := schema.Decode(tc.typ, body); !errors.Is(err, schema.ErrInvalid) {
				t.Fatalf("Decode = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	_, err := schema.Encode(&schema.Pause{RequestHeader: schema.RequestHeader{RolloutID: "r-1"}})
	if !errors.Is(err, schema.ErrInvalid) || !strings.Contains(err.Error(), "requested_by") {
		t.Fatalf("Encode without requested_by = %v, want ErrInvalid naming requested_by", err)
	}
}
