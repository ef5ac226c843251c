package nodeagent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

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

// TestStoreSyncsTheFolderAfterRename: the checkpoint's rename is made
// durable by an fsync of the state folder, after the new file is in place,
// and a failing folder sync fails the save.
func TestStoreSyncsTheFolderAfterRename(t *testing.T) {
	dir := t.TempDir()
	st, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	st.syncDir = func(d string) error {
		cp, ok, err := st.Load()
		if !ok || err != nil || cp.CommandsOffset != 9 {
			t.Errorf("folder synced before the new checkpoint was renamed into place: %+v %v %v", cp, ok, err)
		}
		synced = append(synced, d)
		return syncFolder(d)
	}
	if err := st.Save(Checkpoint{State: mustState(t, RoleProvider), CommandsOffset: 9}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(synced, []string{dir}) {
		t.Fatalf("synced folders %v, want [%s]", synced, dir)
	}
	full := errors.New("no space left on device")
	st.syncDir = func(string) error { return full }
	if err := st.Save(Checkpoint{State: mustState(t, RoleProvider), CommandsOffset: 10}); !errors.Is(err, full) {
		t.Fatalf("save with a failing folder sync: %v", err)
	}
}

// TestOffsetSaveRetriesUntilSaved: a failed offset save (here: the state
// folder is gone, as on a broken disk) is retried until it succeeds instead
// of failing the command loop, which made the agent exit and deregister.
func TestOffsetSaveRetriesUntilSaved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{store: st, log: quiet(), cp: Checkpoint{State: mustState(t, RoleProvider), CommandsOffset: 3}}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	saved := make(chan error, 1)
	go func() { saved <- offsets{a}.Save(ctx, 7) }()
	select {
	case err := <-saved:
		t.Fatalf("the save gave up while the disk failed: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := os.MkdirAll(dir, 0o700); err != nil { // the disk is back
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatalf("save: %v", err)
	}
	got, ok, err := st.Load()
	if !ok || err != nil || got.CommandsOffset != 7 {
		t.Fatalf("persisted %+v ok=%v err=%v, want offset 7", got, ok, err)
	}
	if off, _ := (offsets{a}).Load(ctx); off != 7 {
		t.Fatalf("in memory offset %d, want 7", off)
	}
}
