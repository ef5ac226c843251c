package nodeagent

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/regshift/regshift/schema"
)

func TestStoreRoundTrip(t *testing.T) {
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Load(); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	s := mustState(t, RoleBoth)
	s = Decide(s, Command{ID: "c1", Kind: schema.CommandInstall, Interface: "consul", PackageURL: "u", Digest: "sha256:aa"}).Next
	s = Decide(s, Command{ID: "c2", Kind: schema.CommandActivate, Interface: "consul"}).Next
	want := Checkpoint{State: s, CommandsOffset: 42, Epoch: 3}
	if err := st.Save(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.Load()
	want.Version = checkpointVersion
	if !ok || err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v ok=%v err=%v, want %+v", got, ok, err, want)
	}
}

func TestStoreRefusesBadCheckpoints(t *testing.T) {
	tests := map[string]string{
		"torn":          `{"version":1,"state":{"node":"n`,
		"wrong version": `{"version":9,"state":{"node":"n","role":"provider","interfaces":{"zk":{"name":"zk","phase":"active"}},"primary":"zk"}}`,
		"invariant":     `{"version":1,"state":{"node":"n","role":"provider","interfaces":{"zk":{"name":"zk","phase":"standby"}},"primary":"zk"}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(st.Path(), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.Load(); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("got %v, want ErrCheckpoint", err)
			}
		})
	}
	st, _ := NewStore(t.TempDir())
	if err := st.Save(Checkpoint{State: State{Node: "n"}}); err == nil {
		t.Fatal("saved an invalid state")
	}
}
