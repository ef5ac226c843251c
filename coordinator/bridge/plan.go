package bridge

import (
	"maps"

	"github.com/regshift/regshift/registries"
)

// Metadata keys of the marks a bridge puts on what it writes.
const (
	// MetaMirrored holds the name of the bridge that wrote the instance.
	MetaMirrored = registries.MetaMirrored
	// MetaSource holds the name of the registry the instance came from.
	MetaSource = "regshift-source"
)

// IsMirror reports whether any bridge wrote in.
func IsMirror(in registries.Instance) bool {
	_, ok := in.Metadata[MetaMirrored]
	return ok
}

// MirroredBy reports whether the bridge named name wrote in.
func MirroredBy(in registries.Instance, name string) bool {
	v, ok := in.Metadata[MetaMirrored]
	return ok && v == name
}

// Mirror returns the target's copy of a source instance: the same instance
// with the bridge's marks added to its metadata.
func Mirror(in registries.Instance, name, source string) registries.Instance {
	out := in.Clone()
	out.Metadata = maps.Clone(in.Metadata)
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	out.Metadata[MetaMirrored] = name
	out.Metadata[MetaSource] = source
	return out
}

// Plan is what one sync of a service writes to the target.
type Plan struct {
	Put    []registries.Instance
	Delete []registries.Key
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.Put) == 0 && len(p.Delete) == 0 }

// Reconcile decides how the bridge named name brings the target's instances
// of one service in line with the source's:
//   - every source instance that no bridge wrote is mirrored (put) unless
//     the target already holds that exact mirror and this bridge run wrote
//     it (written), so a restarted bridge takes its mirrors over again;
//   - a key the target holds from anyone else (a provider that registered
//     there itself, or another bridge) is left alone and not mirrored;
//   - a mirror of this bridge whose source instance is gone, or whose key
//     someone else now holds, is deleted.
//
// It is a pure function of its inputs.
func Reconcile(name, source string, src, dst []registries.Instance, written map[registries.Key]registries.Instance) Plan {
	desired := map[registries.Key]registries.Instance{}
	for _, in := range src {
		if !IsMirror(in) {
			desired[in.Key()] = Mirror(in, name, source)
		}
	}
	ours := map[registries.Key]registries.Instance{}
	foreign := map[registries.Key]bool{}
	for _, in := range dst {
		if MirroredBy(in, name) {
			ours[in.Key()] = in
		} else {
			foreign[in.Key()] = true
		}
	}
	var p Plan
	for k := range ours {
		if _, want := desired[k]; !want || foreign[k] {
			p.Delete = append(p.Delete, k)
		}
	}
	for k, want := range desired {
		if foreign[k] {
			continue
		}
		have, ok := ours[k]
		mine, wrote := written[k]
		if ok && have.Equal(want) && wrote && mine.Equal(want) {
			continue
		}
		p.Put = append(p.Put, want)
	}
	registries.SortInstances(p.Put)
	sortKeys(p.Delete)
	return p
}
