package bridge

import (
	"reflect"
	"testing"

	"github.com/regshift/regshift/registries"
)

func inst(id string, port int, md map[string]string) registries.Instance {
	return registries.Instance{Service: "orders", ID: id, Address: "10.0.0.1", Port: port, Metadata: md}
}

func mirrorOf(in registries.Instance, name string) registries.Instance { return Mirror(in, name, "zk") }

func keys(ids ...string) []registries.Key {
	var out []registries.Key
	for _, id := range ids {
		out = append(out, registries.Key{Service: "orders", ID: id})
	}
	return out
}

func TestReconcile(t *testing.T) {
	a, b := inst("a", 1, nil), inst("b", 2, map[string]string{"zone": "x"})
	ma, mb := mirrorOf(a, "me"), mirrorOf(b, "me")
	moved := inst("b", 2, nil) // provider b registered in the target itself
	aMoved := a.Clone()
	aMoved.Port = 9
	written := func(ins ...registries.Instance) map[registries.Key]registries.Instance {
		m := map[registries.Key]registries.Instance{}
		for _, in := range ins {
			m[in.Key()] = in
		}
		return m
	}
	cases := []struct {
		name     string
		src, dst []registries.Instance
		written  map[registries.Key]registries.Instance
		want     Plan
	}{
		{"empty both", nil, nil, nil, Plan{}},
		{"initial sync mirrors all", []registries.Instance{a, b}, nil, nil,
			Plan{Put: []registries.Instance{ma, mb}}},
		{"in sync and written by this run: nothing", []registries.Instance{a, b}, []registries.Instance{ma, mb},
			written(ma, mb), Plan{}},
		{"in sync but left by an earlier run: take over", []registries.Instance{a}, []registries.Instance{ma},
			nil, Plan{Put: []registries.Instance{ma}}},
		{"changed at the source: update", []registries.Instance{aMoved}, []registries.Instance{ma},
			written(ma), Plan{Put: []registries.Instance{mirrorOf(aMoved, "me")}}},
		{"gone from the source: delete our mirror", []registries.Instance{a}, []registries.Instance{ma, mb},
			written(ma, mb), Plan{Delete: keys("b")}},
		{"native instance in the target: left alone, not mirrored, our copy deleted",
			[]registries.Instance{a, b}, []registries.Instance{ma, mb, moved}, written(ma, mb), Plan{Delete: keys("b")}},
		{"another bridge's mirror: never deleted, never overwritten",
			nil, []registries.Instance{mirrorOf(a, "other")}, nil, Plan{}},
		{"a mirror in the source is never mirrored back",
			[]registries.Instance{mirrorOf(a, "reverse")}, nil, nil, Plan{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Reconcile("me", "zk", tc.src, tc.dst, tc.written)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Reconcile =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestMirrorDoesNotAliasSource(t *testing.T) {
	src := inst("a", 1, map[string]string{"zone": "x"})
	m := Mirror(src, "me", "zk")
	if _, marked := src.Metadata[MetaMirrored]; marked {
		t.Fatal("Mirror wrote its mark into the source instance's metadata")
	}
	if !MirroredBy(m, "me") || MirroredBy(m, "other") || m.Metadata[MetaSource] != "zk" || m.Metadata["zone"] != "x" {
		t.Fatalf("mirror metadata %v", m.Metadata)
	}
}

func TestCompare(t *testing.T) {
	a, b, c := inst("a", 1, nil), inst("b", 2, nil), inst("c", 3, nil)
	bElsewhere := b.Clone()
	bElsewhere.Port = 20
	cases := []struct {
		name                string
		src, dst            []registries.Instance
		same, missing, xtra []string
	}{
		{"equal sets", []registries.Instance{a, b}, []registries.Instance{mirrorOf(b, "me"), a}, []string{"a", "b"}, nil, nil},
		{"same count, different instances", []registries.Instance{a, b}, []registries.Instance{a, c}, []string{"a"}, []string{"b"}, []string{"c"}},
		{"same id, other port", []registries.Instance{b}, []registries.Instance{bElsewhere}, nil, []string{"b"}, []string{"b"}},
		{"source mirrors are not providers", []registries.Instance{a, mirrorOf(c, "rev")}, []registries.Instance{a}, []string{"a"}, nil, nil},
		{"both empty", nil, nil, nil, nil, nil},
	}
	ids := func(es []Endpoint) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Compare("orders", tc.src, tc.dst)
			if !reflect.DeepEqual(ids(p.Same), tc.same) || !reflect.DeepEqual(ids(p.Missing), tc.missing) || !reflect.DeepEqual(ids(p.Extra), tc.xtra) {
				t.Fatalf("Compare = same %v missing %v extra %v; want %v %v %v",
					ids(p.Same), ids(p.Missing), ids(p.Extra), tc.same, tc.missing, tc.xtra)
			}
			if p.InSync() != (len(tc.missing) == 0 && len(tc.xtra) == 0) {
				t.Fatalf("InSync = %v", p.InSync())
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"empty name", func(c *Config) { c.Name = "" }, false},
		{"oversize source name", func(c *Config) { c.SourceName = string(make([]byte, 600)) }, false},
		{"zero resync", func(c *Config) { c.ResyncInterval = 0 }, false},
		{"zero parallelism", func(c *Config) { c.Parallelism = 0 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			_, err := New(nil, nil, cfg, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
