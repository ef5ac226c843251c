package etcd

import (
	"context"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/owned"
)

// SetHealth implements registries.HealthSetter by withdrawal: the
// endpoints layout has no health of its own (gRPC's etcd resolver dials
// every endpoint under a service's prefix), so an instance marked critical
// has no key — every reader, regshift's or not, leaves it out — while the
// client still holds it with its mark. Marked passing, it is put back with
// the lease. The output is kept with the mark only (etcd has no place for
// it). The mark holds across re-registrations and lease losses: the lease
// loop restores a critical instance as withdrawn.
//
// When the cluster cannot be reached SetHealth returns the retriable error
// and keeps the mark, which the lease loop applies once it answers.
func (c *Client) SetHealth(ctx context.Context, service, id string, passing bool, output string) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	k, err := c.owned.MarkHeld(service, id, passing, output)
	if err != nil {
		return err
	}
	held, err := c.sync(ctx, k)
	if !held {
		return owned.NotHeld(k) // deregistered meanwhile
	}
	return err
}
