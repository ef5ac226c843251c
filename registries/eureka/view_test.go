package eureka

import (
	"fmt"
	"maps"
	"testing"

	"pgregory.net/rapid"
)

func inst(app, id, status string, port int) instanceInfo {
	return instanceInfo{App: app, InstanceID: id, HostName: "h", IPAddr: "h", Status: status,
		Port: portOf(port), Metadata: metadata{MetaService: app}}
}

func portOf(n int) port { return port{Number: n, Enabled: "true"} }

func withAction(in instanceInfo, action string) instanceInfo {
	in.ActionType = action
	return in
}

func TestHashCode(t *testing.T) {
	cases := []struct {
		name string
		v    view
		want string
	}{
		{"empty", view{}, ""},
		{"one", fromFull([]application{{Name: "A", Instances: []instanceInfo{inst("A", "1", "UP", 1)}}}), "UP_1_"},
		{"statuses in name order, across apps", fromFull([]application{
			{Name: "A", Instances: []instanceInfo{inst("A", "1", "UP", 1), inst("A", "2", "DOWN", 2)}},
			{Name: "B", Instances: []instanceInfo{inst("B", "1", "UP", 1), inst("B", "2", "OUT_OF_SERVICE", 2)}},
		}), "DOWN_1_OUT_OF_SERVICE_1_UP_2_"},
	}
	for _, tc := range cases {
		if got := tc.v.hashCode(); got != tc.want {
			t.Errorf("%s: hash %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestApplyDelta: added, modified and deleted instances; a repeat of what
// the view has and the deletion of what it lacks change nothing; the view
// applied to is left as it was.
func TestApplyDelta(t *testing.T) {
	v := fromFull([]application{{Name: "A", Instances: []instanceInfo{inst("A", "1", "UP", 1), inst("A", "2", "UP", 2)}}})
	delta := []application{
		{Name: "A", Instances: []instanceInfo{
			withAction(inst("A", "1", "UP", 1), actionAdded),      // already there
			withAction(inst("A", "2", "DOWN", 2), actionModified), // status change
			withAction(inst("A", "9", "UP", 9), actionDeleted),    // never seen
		}},
		{Name: "B", Instances: []instanceInfo{withAction(inst("B", "1", "UP", 7), actionAdded)}},
	}
	next, changed := v.applyDelta(delta)
	if !changed {
		t.Fatal("a delta with changes reported none")
	}
	if got := next.hashCode(); got != "DOWN_1_UP_2_" {
		t.Fatalf("hash after the delta %q", got)
	}
	if v["A"]["2"].Status != "UP" || len(v) != 1 {
		t.Fatal("applyDelta changed the view it was given")
	}
	again, changed := next.applyDelta(delta)
	if changed || !sameView(again, next) {
		t.Fatal("applying the same delta twice changed the view")
	}
	gone, _ := next.applyDelta([]application{{Name: "B", Instances: []instanceInfo{withAction(inst("B", "1", "UP", 7), actionDeleted)}}})
	if _, ok := gone["B"]; ok {
		t.Fatal("an app without instances stayed in the view")
	}
}

// TestMissedDeleteHashes: a view that missed a deletion (its delta aged
// out of the server's window) does not hash as the server's registry, so
// the watch fetches in full.
func TestMissedDeleteHashes(t *testing.T) {
	v := fromFull([]application{{Name: "A", Instances: []instanceInfo{inst("A", "1", "UP", 1), inst("A", "2", "UP", 2)}}})
	server := fromFull([]application{{Name: "A", Instances: []instanceInfo{inst("A", "1", "UP", 1)}}})
	next, _ := v.applyDelta(nil) // the deletion is no longer in the delta
	if next.hashCode() == server.hashCode() {
		t.Fatal("a missed deletion hashes as the server's registry")
	}
}

// TestDeltaProperty: a server's registry changes at random between the
// fetches of a client; each delta holds the latest state of every
// instance changed since some time before the client's previous fetch (a
// server's window reaches further back). The view after each delta is the
// server's registry and hashes as it.
func TestDeltaProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		server := view{}
		var log []instanceInfo // every change, in order, with its action
		apply := func(in instanceInfo) {
			next, _ := server.applyDelta([]application{{Name: in.App, Instances: []instanceInfo{in}}})
			server = next
			log = append(log, in)
		}
		v := maps.Clone(server)
		fetchedAt := 0
		for round := range rapid.IntRange(1, 8).Draw(t, "rounds") {
			for range rapid.IntRange(0, 10).Draw(t, fmt.Sprintf("changes%d", round)) {
				app := rapid.SampledFrom([]string{"A", "B"}).Draw(t, "app")
				id := rapid.SampledFrom([]string{"1", "2", "3"}).Draw(t, "id")
				switch rapid.IntRange(0, 2).Draw(t, "op") {
				case 0:
					apply(withAction(inst(app, id, "UP", rapid.IntRange(1, 3).Draw(t, "port")), actionAdded))
				case 1:
					apply(withAction(inst(app, id, rapid.SampledFrom([]string{"UP", "DOWN"}).Draw(t, "status"), 1), actionModified))
				case 2:
					if _, ok := server[app][id]; ok {
						apply(withAction(server[app][id], actionDeleted))
					}
				}
			}
			// The delta: the latest change of each instance changed since
			// a point at or before the client's last fetch.
			from := rapid.IntRange(0, fetchedAt).Draw(t, "window")
			latest := map[[2]string]instanceInfo{}
			var order [][2]string
			for _, in := range log[from:] {
				k := [2]string{in.App, in.InstanceID}
				if _, ok := latest[k]; !ok {
					order = append(order, k)
				}
				latest[k] = in
			}
			var delta []application
			for _, k := range order {
				delta = append(delta, application{Name: k[0], Instances: []instanceInfo{latest[k]}})
			}
			v, _ = v.applyDelta(delta)
			fetchedAt = len(log)
			if !sameView(v, server) || v.hashCode() != server.hashCode() {
				t.Fatalf("round %d: view %v (hash %q) is not the server's %v (hash %q)", round, v, v.hashCode(), server, server.hashCode())
			}
		}
	})
}
