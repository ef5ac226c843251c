package schema_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/regshift/regshift/schema"
)

// strs turns typed constants into their wire values.
func strs[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// TestEnumsMatchConstants keeps the JSON Schemas' enums and the Go
// constants declared in kinds.go in step: a value added on one side only
// fails here.
func TestEnumsMatchConstants(t *testing.T) {
	want := map[string][]string{
		"defs.v1.json /$defs/interfaceState": strs(schema.StateAbsent, schema.StateInstalled, schema.StateActive,
			schema.StateStandby, schema.StateRemoved),
		"event.ack.v1.json /outcome":                    strs(schema.AckDone, schema.AckFailed, schema.AckRejected),
		"event.health.v1.json /interfaces/items/status": strs(schema.HealthPassing, schema.HealthWarning, schema.HealthCritical, schema.HealthUnknown),
		"state.rollout-node.v1.json /reached":           strs(schema.ReachedNone, schema.ReachedInstalled, schema.ReachedActive, schema.ReachedSwitchedBack, schema.ReachedUninstalled),
		"state.rollout-node.v1.json /pending/command/kind": strs(schema.CommandInstall, schema.CommandActivate,
			schema.CommandSwitchBack, schema.CommandUninstall),
		"state.seen-request.v1.json /kind": strs(schema.RequestCreate, schema.RequestPause, schema.RequestResume, schema.RequestApprove,
			schema.RequestAbort, schema.RequestFinalize),
		"state.rollout.v1.json /phase": strs(schema.PhasePreparing, schema.PhaseRolling, schema.PhaseCommitted, schema.PhaseFinalizing,
			schema.PhaseFinalized, schema.PhaseSwitchingBack, schema.PhaseSwitchedBack, schema.PhaseFailed),
	}
	got := map[string][]string{}
	err := fs.WalkDir(schema.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := fs.ReadFile(schema.Files(), path)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		enums(doc, "", func(at string, values []string) { got[path+" "+at] = values })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for at, w := range want {
		g, ok := got[at]
		if !ok {
			t.Errorf("%s: no enum there any more", at)
			continue
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s: the schema says %q, the constants %q", at, g, w)
		}
	}
}

// enums calls found with the path (without "properties" steps) of every
// enum of strings in a JSON Schema document.
func enums(v any, at string, found func(at string, values []string)) {
	switch v := v.(type) {
	case map[string]any:
		if e, ok := v["enum"].([]any); ok {
			var values []string
			for _, x := range e {
				if s, ok := x.(string); ok {
					values = append(values, s)
				}
			}
			found(at, values)
		}
		for k, c := range v {
			next := at + "/" + k
			if k == "properties" {
				next = at
			}
			enums(c, next, found)
		}
	case []any:
		for i, c := range v {
			enums(c, fmt.Sprintf("%s/%d", at, i), found)
		}
	}
}
