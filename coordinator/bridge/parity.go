package bridge

import (
	"cmp"
	"slices"

	"github.com/regshift/regshift/registries"
)

// Endpoint is what a consumer gets from one instance.
type Endpoint struct {
	ID      string
	Address string
	Port    int
}

// ServiceParity compares one service's instance sets in source and target.
type ServiceParity struct {
	Service string
	// Same are in both; Missing only in the source (consumers of the target
	// do not find them); Extra only in the target (registered there
	// directly, or stale).
	Same, Missing, Extra []Endpoint
	// Unowned are the source instances Config.Owned says no node of the
	// fleet owns (set by Bridge.Parity only).
	Unowned []Endpoint
}

// InSync reports whether the target offers exactly the source's endpoints.
func (p ServiceParity) InSync() bool { return len(p.Missing) == 0 && len(p.Extra) == 0 }

// Report is the parity of every service either registry knows.
type Report struct {
	Services []ServiceParity
	// Converged is set by Bridge.Parity when the bridge had converged on
	// every service compared (see Bridge.Converged); only then does a
	// shortfall say something about the registries rather than the bridge.
	Converged bool
}

// InSync reports whether every service is in sync.
func (r Report) InSync() bool {
	for _, s := range r.Services {
		if !s.InSync() {
			return false
		}
	}
	return true
}

// Service returns the parity of one service, and whether it was compared.
func (r Report) Service(name string) (ServiceParity, bool) {
	for _, s := range r.Services {
		if s.Service == name {
			return s, true
		}
	}
	return ServiceParity{}, false
}

// Compare computes one service's parity. Source instances written by a
// bridge (mirrors of yet another registry) are left out: they are not
// providers of the source.
func Compare(service string, src, dst []registries.Instance) ServiceParity {
	p := ServiceParity{Service: service}
	have := map[Endpoint]bool{}
	for _, in := range dst {
		have[endpoint(in)] = true
	}
	for _, in := range src {
		if IsMirror(in) {
			continue
		}
		e := endpoint(in)
		if have[e] {
			p.Same = append(p.Same, e)
			delete(have, e)
		} else {
			p.Missing = append(p.Missing, e)
		}
	}
	for e := range have {
		p.Extra = append(p.Extra, e)
	}
	for _, s := range [][]Endpoint{p.Same, p.Missing, p.Extra} {
		slices.SortFunc(s, func(a, b Endpoint) int {
			return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
		})
	}
	return p
}

func endpoint(in registries.Instance) Endpoint {
	return Endpoint{ID: in.ID, Address: in.Address, Port: in.Port}
}

func sortKeys(keys []registries.Key) {
	slices.SortFunc(keys, func(a, b registries.Key) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
}
