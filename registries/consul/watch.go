package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/watch"
)

// Watch implements registries.Registry with blocking queries on the
// passing-only health endpoint.
func (c *Client) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	return watch.Start(c.life, ctx, func(ctx context.Context, out chan []registries.Instance) {
		c.watch(ctx, service, out)
	})
}

func (c *Client) watch(ctx context.Context, service string, out chan []registries.Instance) {
	b := watch.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	var (
		index uint64
		last  []registries.Instance
		sent  bool
	)
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WatchWait}).WithContext(ctx)
		entries, meta, err := c.health.Service(service, "", true, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Debug("watch query failed; retrying", "service", service, "err", err)
			if !b.Wait(ctx) {
				return
			}
			continue
		}
		b.Reset()
		switch {
		case meta.LastIndex < index:
			index = 0 // the index went backwards (snapshot restore): start over
		default:
			index = max(meta.LastIndex, 1) // 0 would not block: never spin
		}
		set := instances(entries)
		if !sent || !watch.Same(last, set) {
			last, sent = set, true
			watch.Offer(out, set)
		}
	}
}
