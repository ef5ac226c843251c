package etcd

import (
	"fmt"

	"github.com/regshift/regshift/registries/address"
)

// ParseAddress splits an etcd address — the members' host:port list, then
// optionally the key prefix after the first '/' — into its endpoints and
// prefix; see address.Etcd for the rules. Errors wrap ErrConfig and quote
// the address.
func ParseAddress(addr string) (endpoints []string, prefix string, err error) {
	endpoints, prefix, err = address.Etcd(addr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: address %w", ErrConfig, err)
	}
	return endpoints, prefix, nil
}
