package zookeeper

import (
	"fmt"

	"github.com/regshift/regshift/registries/address"
)

// ParseAddress splits a ZooKeeper address — the ensemble's host:port list,
// then optionally the Curator base path after the first '/' — into its
// servers and base path; see address.ZooKeeper for the rules. Errors wrap
// ErrConfig and quote the address.
func ParseAddress(addr string) (servers []string, basePath string, err error) {
	servers, basePath, err = address.ZooKeeper(addr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: address %w", ErrConfig, err)
	}
	return servers, basePath, nil
}
