package registries_test

import (
	"testing"

	"github.com/regshift/regshift/registries"
)

func TestKindValid(t *testing.T) {
	for _, tc := range []struct {
		kind registries.Kind
		want bool
	}{
		{registries.KindZooKeeper, true},
		{registries.KindConsul, true},
		{"zookeeper", true},
		{"", false},
		{"ZooKeeper", false},
		{"memory", false},
		{registries.KindEtcd, true},
		{registries.KindEureka, true},
		{"nacos", false},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			if got := tc.kind.Valid(); got != tc.want {
				t.Errorf("Kind(%q).Valid() = %v, want %v", tc.kind, got, tc.want)
			}
		})
	}
}

func TestKindsAreValid(t *testing.T) {
	if len(registries.Kinds()) == 0 {
		t.Fatal("Kinds() is empty")
	}
	for _, k := range registries.Kinds() {
		if !k.Valid() {
			t.Errorf("Kinds() holds %q, which is not Valid", k)
		}
	}
}

func TestKindNames(t *testing.T) {
	if got := registries.KindNames(); got != "zookeeper, consul, etcd or eureka" {
		t.Fatalf("KindNames() = %q", got)
	}
}
