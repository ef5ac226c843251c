package nodeagent

import (
	"testing"

	"github.com/regshift/regshift/registries"
)

// TestEndpointsOnePerInstance: a registry holding an instance twice (its
// owner's registration and a bridge's mirror) gives the apps one endpoint,
// the owner's, whichever comes first.
func TestEndpointsOnePerInstance(t *testing.T) {
	own := registries.Instance{Service: "orders", ID: "p1", Address: "127.0.0.1", Port: 8080, Metadata: map[string]string{registries.MetaNode: "p1"}}
	mirror := own.Clone()
	mirror.Metadata = map[string]string{registries.MetaNode: "p1", registries.MetaMirrored: "regshift-bridge/ro-1"}
	other := registries.Instance{Service: "orders", ID: "p2", Address: "127.0.0.1", Port: 8081}
	for _, set := range [][]registries.Instance{{mirror, own, other}, {own, mirror, other}} {
		got := endpoints(set)
		if len(got) != 2 || got[0].ID != "p1" || isMirror(got[0].Meta) || got[1].ID != "p2" {
			t.Fatalf("endpoints of %v: %+v", set, got)
		}
	}
	if got := endpoints([]registries.Instance{mirror}); len(got) != 1 || !isMirror(got[0].Meta) {
		t.Fatalf("a mirror alone is still an endpoint: %+v", got)
	}
}
