package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/owned"
	"github.com/regshift/regshift/registries/internal/watch"
)

// leaseLoop owns the client's lease: it grants one once the first
// registration wants it, keeps it alive, and when it is lost (revoked,
// expired while the cluster could not be reached, gone with a cluster that
// lost its data) grants a new one and writes every owned instance again
// under it. While it holds a lease it also completes the writes that
// failed (registrations, health marks, deregistrations), with backoff.
func (c *Client) leaseLoop() {
	ctx := c.life.Context()
	select {
	case <-ctx.Done():
		return
	case <-c.kick:
	}
	b := watch.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for first := true; ctx.Err() == nil; {
		resp, err := call(ctx, c, "grant lease", func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
			return c.lease.Grant(ctx, int64(c.cfg.LeaseTTL/time.Second))
		})
		if err != nil {
			c.mu.Lock()
			c.grantErr = err
			c.mu.Unlock()
			c.log.Debug("granting a lease failed; retrying", "err", err)
			if !b.Wait(ctx) {
				return
			}
			continue
		}
		b.Reset()
		c.hold(ctx, resp.ID, first)
		first = false
	}
}

// hold keeps lease id alive and the owned instances written under it until
// the lease is lost or the client closes. first says that no lease came
// before: nothing is restored under it.
func (c *Client) hold(ctx context.Context, id clientv3.LeaseID, first bool) {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	alive, err := c.lease.KeepAlive(kctx, id)
	if err != nil {
		c.log.Debug("keeping the lease alive failed", "lease", fmt.Sprintf("%x", id), "err", err)
		return
	}
	c.publish(id)
	defer c.unpublish(id)
	retry := time.NewTimer(0) // write what this lease does not hold yet, at once
	defer retry.Stop()
	b := watch.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-alive:
			if ok {
				continue
			}
			if ctx.Err() == nil {
				c.log.Warn("lease lost; granting a new one and restoring the registrations", "lease", fmt.Sprintf("%x", id))
			}
			return
		case <-c.kick:
			if !c.holds(id) {
				c.log.Warn("the cluster no longer knows the lease; granting a new one and restoring the registrations", "lease", fmt.Sprintf("%x", id))
				return
			}
		case <-retry.C:
		}
		n, err := c.reconcile(ctx, id)
		if n > 0 && !first {
			c.log.Info("registrations restored under the new lease", "count", n, "lease", fmt.Sprintf("%x", id))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Debug("writing registrations failed; retrying", "err", err)
			retry.Reset(b.Next())
			continue
		}
		b.Reset()
	}
}

// publish makes id the lease every write uses.
func (c *Client) publish(id clientv3.LeaseID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current, c.grantErr = id, nil
	close(c.granted)
}

// unpublish withdraws id if it is still the current lease.
func (c *Client) unpublish(id clientv3.LeaseID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == id {
		c.current = 0
		c.granted = make(chan struct{})
	}
}

func (c *Client) holds(id clientv3.LeaseID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current == id
}

// wake kicks the lease loop without blocking.
func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// awaitLease returns the lease held, asking the lease loop for one and
// waiting for it (bounded by ctx) when there is none.
func (c *Client) awaitLease(ctx context.Context) (clientv3.LeaseID, error) {
	for {
		c.mu.Lock()
		id, granted, why := c.current, c.granted, c.grantErr
		c.mu.Unlock()
		if id != 0 {
			return id, nil
		}
		c.wake()
		select {
		case <-granted:
		case <-ctx.Done():
			if why == nil {
				why = ctx.Err()
			}
			return 0, fmt.Errorf("etcd: no lease: %w: %w", registries.ErrUnavailable, why)
		case <-c.life.Context().Done():
			return 0, registries.ErrClosed
		}
	}
}

// sync writes the owned instance with key k under the current lease (see
// apply), waiting for a lease up to RequestTimeout; a lease found gone
// while writing is waited for once more, anew. held is false when the
// client does not hold k. A failed write is left to the lease loop.
func (c *Client) sync(ctx context.Context, k registries.Key) (held bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	for attempt := 0; attempt < 2; attempt++ {
		var id clientv3.LeaseID
		if id, err = c.awaitLease(ctx); err != nil {
			_, held = c.owned.Get(k)
			break
		}
		if held, err = c.apply(ctx, k, id); !errors.Is(err, registries.ErrSessionLost) {
			break
		}
	}
	switch {
	case err == nil:
	case c.life.Closed():
		err = registries.ErrClosed
	default:
		c.wake()
	}
	return held, err
}

// apply brings the cluster's copy of the owned instance with key k in line
// with the client's entry under lease id: its key put with the lease, or
// deleted while the entry is marked critical. It writes again while the
// entry changed meanwhile, and takes back a put of an entry deregistered
// meanwhile, so concurrent writers of one key end with the latest.
func (c *Client) apply(ctx context.Context, k registries.Key, id clientv3.LeaseID) (held bool, err error) {
	for {
		e, ok := c.owned.Get(k)
		if !ok {
			return false, nil
		}
		if c.wrote(k, mark{id, e.Version}) {
			return true, nil
		}
		rev, err := c.write(ctx, e, id)
		if err != nil {
			return true, err
		}
		c.record(k, mark{id, e.Version})
		if c.owned.Current(e) {
			return true, nil
		}
		if _, ok := c.owned.Get(k); !ok && rev != 0 {
			c.takeBack(ctx, k, rev)
			return false, nil
		}
	}
}

// write puts e's key with lease id, or deletes it when e is marked
// critical; rev is the put's revision (0 for a delete). A lease the
// cluster no longer knows is handed back to the lease loop.
func (c *Client) write(ctx context.Context, e owned.Entry, id clientv3.LeaseID) (rev int64, err error) {
	in := e.Instance
	key := instanceKey(c.cfg.Prefix, in.Service, in.ID)
	if e.Health.Critical {
		_, err := c.kv.Delete(ctx, key)
		return 0, mapErr("withdraw critical instance", err)
	}
	data, err := encode(in)
	if err != nil {
		return 0, err
	}
	resp, err := c.kv.Put(ctx, key, string(data), clientv3.WithLease(id))
	if err != nil {
		err = mapErr("register", err)
		if errors.Is(err, registries.ErrSessionLost) {
			c.unpublish(id)
			c.wake()
		}
		return 0, err
	}
	return resp.Header.Revision, nil
}

// takeBack deletes k's key if it still holds the put of revision rev: an
// instance deregistered while it was being written stays deregistered.
func (c *Client) takeBack(ctx context.Context, k registries.Key, rev int64) {
	key := instanceKey(c.cfg.Prefix, k.Service, k.ID)
	_, err := c.kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		c.log.Warn("taking back a registration deregistered meanwhile failed; it ends with the lease", "key", key, "err", err)
	}
	c.mu.Lock()
	delete(c.written, k)
	c.mu.Unlock()
}

func (c *Client) wrote(k registries.Key, m mark) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written[k] == m
}

// record notes that m was written of k, unless a later version of the
// same lease already was.
func (c *Client) record(k registries.Key, m mark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.written[k]; ok && old.lease == m.lease && old.version > m.version {
		return
	}
	c.written[k] = m
}

// reconcile writes under lease id every owned instance it does not hold
// as the client holds it, and deletes again what a failed Deregister left
// under it, on up to reconcileWorkers concurrent requests. It stops at the
// first error (a cluster that cannot be reached would cost RequestTimeout
// per instance) and returns it, with the count of instances written.
func (c *Client) reconcile(ctx context.Context, id clientv3.LeaseID) (int, error) {
	var work []func(context.Context) error
	for _, in := range c.owned.List() {
		k := in.Key()
		if e, ok := c.owned.Get(k); ok && !c.wrote(k, mark{id, e.Version}) {
			work = append(work, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
				defer cancel()
				_, err := c.apply(ctx, k, id)
				return err
			})
		}
	}
	c.mu.Lock()
	for k := range c.gone {
		work = append(work, func(ctx context.Context) error { return c.deleteGone(ctx, k, id) })
	}
	c.mu.Unlock()
	if len(work) == 0 {
		return 0, nil
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	next := make(chan func(context.Context) error)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range min(reconcileWorkers, len(work)) {
		wg.Go(func() {
			for fn := range next {
				if err := fn(ctx); err != nil {
					stop(err)
					continue
				}
				done.Add(1)
			}
		})
	}
feed:
	for _, fn := range work {
		select {
		case next <- fn:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return int(done.Load()), context.Cause(ctx)
}

const reconcileWorkers = 8

// deleteGone deletes the key of k, deregistered while the cluster could
// not be reached, if lease id still holds it (another client may have
// registered it since; under a lost lease it is gone already).
func (c *Client) deleteGone(ctx context.Context, k registries.Key, id clientv3.LeaseID) error {
	key := instanceKey(c.cfg.Prefix, k.Service, k.ID)
	_, err := call(ctx, c, "deregister", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return c.kv.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(key), "=", id)).Then(clientv3.OpDelete(key)).Commit()
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.gone, k)
	c.mu.Unlock()
	return nil
}
