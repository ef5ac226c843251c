package eureka

import (
	"context"

	"github.com/regshift/regshift/registries"
)

// SetHealth implements registries.HealthSetter with the instance's Eureka
// status: critical registers it again DOWN, with output (cut to 1 KiB,
// owned.MaxOutput) in its metadata under MetaHealth for an operator to
// read; passing registers it UP. Eureka's readers, Resolve and Watch among
// them, leave DOWN instances out (Spring Cloud's discovery client does by
// default); the instance keeps its lease, renewed as before, and a
// re-registration after the server lost it registers it DOWN again.
//
// A status an operator set through Eureka's status override (PUT
// .../status?value=OUT_OF_SERVICE) is the server's to keep: it outlives
// these registrations until the operator removes it.
//
// When the server cannot be reached SetHealth returns the retriable error
// and keeps the mark; the next renewal finds the server's copy older (its
// lastDirtyTimestamp) and registers the marked instance.
func (c *Client) SetHealth(ctx context.Context, service, id string, passing bool, output string) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	return c.owned.SetHealth(ctx, service, id, passing, output, c.register)
}
