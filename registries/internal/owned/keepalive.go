package owned

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/regshift/regshift/registries"
)

// KeepaliveWorkers is how many instances a keepalive round refreshes at
// once.
const KeepaliveWorkers = 8

// Keepalive calls refresh for every instance the set holds each period,
// on up to KeepaliveWorkers goroutines, until ctx ends; it warns when a
// round takes longer than its period (the registry may then drop
// instances whose refresh comes too late).
func Keepalive(ctx context.Context, period time.Duration, s *Set, refresh func(context.Context, registries.Key), log *slog.Logger) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		held := s.List()
		work := make(chan registries.Key)
		var wg sync.WaitGroup
		for range KeepaliveWorkers {
			wg.Go(func() {
				for k := range work {
					refresh(ctx, k)
				}
			})
		}
		for _, in := range held {
			work <- in.Key()
		}
		close(work)
		wg.Wait()
		if took := time.Since(start); took > period && ctx.Err() == nil {
			log.Warn("keepalive round took longer than its period; the registry may drop instances",
				"took", took, "period", period, "instances", len(held))
		}
	}
}
