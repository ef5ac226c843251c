package eureka

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/regshift/regshift/registries"
)

// view is the whole registry as a watching client holds it: app name ->
// instance key -> instance. A view is never changed once made: applyDelta
// returns a new one that shares the apps the delta left alone.
type view map[string]map[string]instanceInfo

// fromFull makes the view of a full fetch.
func fromFull(apps []application) view {
	v := make(view, len(apps))
	for _, a := range apps {
		m := make(map[string]instanceInfo, len(a.Instances))
		for _, in := range a.Instances {
			m[in.key()] = in
		}
		if len(m) > 0 {
			v[a.Name] = m
		}
	}
	return v
}

// applyDelta returns v with a delta fetch's instances applied as Eureka's
// own client applies them: ADDED and MODIFIED put the instance, DELETED
// removes it (an unknown one is ignored); an app left without instances
// goes. A delta holds every change of the server's last minutes, also
// those v already has: each instance appears once, as it is now, so
// applying it again changes nothing. changed reports whether any app
// differs from v's.
func (v view) applyDelta(delta []application) (next view, changed bool) {
	next = maps.Clone(v)
	if next == nil {
		next = view{}
	}
	copied := map[string]bool{}
	for _, a := range delta {
		for _, in := range a.Instances {
			app := a.Name
			old, had := next[app][in.key()]
			deleted := in.ActionType == actionDeleted
			if (deleted && !had) || (!deleted && had && sameInstance(old, in)) {
				continue
			}
			if !copied[app] {
				next[app] = maps.Clone(next[app])
				if next[app] == nil {
					next[app] = map[string]instanceInfo{}
				}
				copied[app] = true
			}
			changed = true
			if deleted {
				delete(next[app], in.key())
				continue
			}
			next[app][in.key()] = in
		}
	}
	for app := range copied {
		if len(next[app]) == 0 {
			delete(next, app)
		}
	}
	return next, changed
}

// sameInstance reports whether two copies of an instance carry the same
// data a reader sees (not the lease's timestamps or the delta's action).
func sameInstance(a, b instanceInfo) bool {
	return a.HostName == b.HostName && a.IPAddr == b.IPAddr && a.Status == b.Status &&
		a.Port == b.Port && a.SecurePort == b.SecurePort && a.InstanceID == b.InstanceID &&
		maps.Equal(a.Metadata, b.Metadata)
}

// hashCode is Eureka's reconcile hash code of the view
// (Applications.getReconcileHashCode): for each status in name order, the
// status, '_', the number of instances in it, '_' ("DOWN_1_UP_20_"; "" for
// no instances). A client whose view after a delta does not hash as the
// server's registry did when it made that delta has missed a change and
// fetches in full.
func (v view) hashCode() string {
	counts := map[string]int{}
	for _, app := range v {
		for _, in := range app {
			counts[in.Status]++
		}
	}
	var b strings.Builder
	for _, status := range slices.Sorted(maps.Keys(counts)) {
		b.WriteString(status + "_" + strconv.Itoa(counts[status]) + "_")
	}
	return b.String()
}

// up returns the UP instances of service in the view, sorted by id (see
// instanceInfo.serves: another client's instances are in the app of the
// service's name, whatever its case).
func (v view) up(service string) []registries.Instance {
	app := v[appName(service)]
	insts := make([]instanceInfo, 0, len(app))
	for _, in := range app {
		insts = append(insts, in)
	}
	return upInstances(insts, service)
}
