package memory

import (
	"context"

	"github.com/regshift/regshift/registries"
)

// SetHealth implements registries.HealthSetter: Resolve and Watch leave out
// an instance marked critical, and the store's watchers see the change. The
// output is kept by the client only (cut to 1 KiB, owned.MaxOutput): the
// store, like Consul's passing-only reads, shows none. When the store is
// down the mark is kept and applied once it answers (SetDown(false)), as a
// restored registration carries it too.
func (c *Client) SetHealth(ctx context.Context, service, id string, passing bool, output string) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	k, err := c.owned.MarkHeld(service, id, passing, output)
	if err != nil {
		return err
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.store.mu.Unlock()
	// The mark held now, under the store's lock: of two SetHealth calls the
	// later mark wins. A registration another client took over is not ours
	// to mark.
	e, held := c.owned.Get(k)
	st, ok := c.store.instances[k]
	if !held || !ok || !st.inst.Equal(e.Instance) || st.critical == e.Health.Critical {
		return nil
	}
	st.critical = e.Health.Critical
	c.store.instances[k] = st
	c.store.notifyLocked(service)
	return nil
}
