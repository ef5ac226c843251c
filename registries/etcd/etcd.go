package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/life"
	"github.com/regshift/regshift/registries/internal/owned"
)

// The etcd SDK calls this package makes.
type (
	kvAPI interface {
		Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
		Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error)
		Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error)
		Txn(ctx context.Context) clientv3.Txn
	}
	leaseAPI interface {
		Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error)
		KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error)
		Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error)
	}
	watchAPI interface {
		Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan
	}
)

// Client is a registries.Registry on an etcd cluster.
type Client struct {
	cfg     Config
	log     *slog.Logger
	cli     *clientv3.Client
	kv      kvAPI
	lease   leaseAPI
	watcher watchAPI
	life    *life.Group
	owned   owned.Set // what this client registered, with its health marks

	// kick wakes the lease loop (capacity 1): a lease is wanted, a write
	// failed, or the lease turned out to be gone.
	kick chan struct{}

	mu       sync.Mutex
	current  clientv3.LeaseID // the lease held, 0 while none
	granted  chan struct{}    // closed once a lease is held; replaced when it is lost
	grantErr error            // why the last grant failed
	written  map[registries.Key]mark
	gone     map[registries.Key]bool // deregistered while the cluster failed: delete again
}

// mark says what the client last wrote of an owned instance: its entry's
// version under which lease.
type mark struct {
	lease   clientv3.LeaseID
	version uint64
}

var (
	_ registries.Registry     = (*Client)(nil)
	_ registries.HealthSetter = (*Client)(nil)
)

// New validates cfg and makes a client. It does not wait for the cluster:
// a client of a cluster that is down is made at once and its operations
// return registries.ErrUnavailable. The lease is granted with the first
// registration. A nil logger discards logs.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: slices.Clone(cfg.Endpoints),
		// No DialTimeout: the connection is made in the background, and
		// every request is bounded by RequestTimeout instead.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  cfg.TLS,
		Logger:               zap.NewNop(),
		// gRPC backs off up to 2 minutes between reconnects by default; a
		// member that is back is seen within 2 seconds instead.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: cfg.RequestTimeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &Client{
		cfg: cfg, log: log.With("component", "registry-etcd"), cli: cli,
		kv: cli.KV, lease: cli.Lease, watcher: cli.Watcher, life: life.New(),
		kick:    make(chan struct{}, 1),
		granted: make(chan struct{}),
		written: map[registries.Key]mark{},
		gone:    map[registries.Key]bool{},
	}
	_ = c.life.Go(c.leaseLoop)
	return c, nil
}

// mapErr turns SDK errors into the registries sentinels: no connection, a
// timeout, no leader, an overloaded or cancelled request are unavailable;
// a lease the cluster no longer knows is a lost session; anything else
// (permission denied, a request the cluster refuses) is returned as it is.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcd %s: %w: %w", op, registries.ErrSessionLost, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return fmt.Errorf("etcd %s: %w: %w", op, registries.ErrUnavailable, err)
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
		return fmt.Errorf("etcd %s: %w: %w", op, registries.ErrUnavailable, err)
	}
	return fmt.Errorf("etcd %s: %w", op, err)
}

// call runs one request bounded by RequestTimeout; after Close its error
// is ErrClosed.
func call[T any](ctx context.Context, c *Client, op string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if c.life.Closed() {
		return zero, registries.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	v, err := fn(ctx)
	if err != nil {
		if c.life.Closed() {
			return zero, fmt.Errorf("etcd %s: %w", op, registries.ErrClosed)
		}
		return zero, mapErr(op, err)
	}
	return v, nil
}

// Register implements registries.Registry: it puts the instance's key with
// the client's lease, granting the lease first when the client holds none.
func (c *Client) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	inst = inst.Clone()
	c.mu.Lock()
	delete(c.gone, inst.Key())
	c.mu.Unlock()
	c.owned.Put(inst) // the lease loop completes it should this attempt fail
	_, err := c.sync(ctx, inst.Key())
	c.owned.Settle(inst, err)
	return err
}

// Deregister implements registries.Registry: it deletes the instance's
// key, whichever client wrote it. ErrNotFound when there was none and this
// client held no such instance (one it holds marked critical has no key).
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	if err := validKey(service, id); err != nil {
		return err
	}
	if c.life.Closed() {
		return registries.ErrClosed
	}
	k := registries.Key{Service: service, ID: id}
	_, held := c.owned.Get(k)
	c.owned.Delete(k)
	c.mu.Lock()
	delete(c.written, k)
	c.mu.Unlock()
	resp, err := call(ctx, c, "deregister", func(ctx context.Context) (*clientv3.DeleteResponse, error) {
		return c.kv.Delete(ctx, instanceKey(c.cfg.Prefix, service, id))
	})
	if err != nil {
		if held && registries.Retriable(err) {
			// The key may live on with the lease: the lease loop deletes it.
			c.mu.Lock()
			c.gone[k] = true
			c.mu.Unlock()
			c.wake()
		}
		return err
	}
	if resp.Deleted == 0 && !held {
		return fmt.Errorf("etcd deregister %s/%s: %w", service, id, registries.ErrNotFound)
	}
	return nil
}

// Resolve implements registries.Registry: the instances under the
// service's prefix, sorted by id.
func (c *Client) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	if err := registries.ValidateService(service); err != nil {
		return nil, err
	}
	resp, err := call(ctx, c, "resolve", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.kv.Get(ctx, serviceKey(c.cfg.Prefix, service), clientv3.WithPrefix())
	})
	if err != nil {
		return nil, err
	}
	out := make([]registries.Instance, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if in, ok := c.parse(kv.Key, kv.Value); ok {
			out = append(out, in)
		}
	}
	registries.SortInstances(out)
	return out, nil
}

// parse decodes one instance key and value, logging what cannot be used.
func (c *Client) parse(key, val []byte) (registries.Instance, bool) {
	service, id, err := splitKey(c.cfg.Prefix, string(key))
	if err == nil {
		var in registries.Instance
		if in, err = decode(service, id, val); err == nil {
			return in, true
		}
	}
	c.log.Warn("skipping unreadable instance", "key", string(key), "err", err)
	return registries.Instance{}, false
}

// Services implements registries.Registry: the services that have at
// least one key under the prefix.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	resp, err := call(ctx, c, "services", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.kv.Get(ctx, c.cfg.Prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range resp.Kvs {
		if service, _, err := splitKey(c.cfg.Prefix, string(kv.Key)); err == nil {
			out = append(out, service)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Ping implements registries.Registry with a linearizable read of the
// prefix's key count, which needs a leader.
func (c *Client) Ping(ctx context.Context) error {
	_, err := call(ctx, c, "ping", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.kv.Get(ctx, c.cfg.Prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	})
	return err
}

// Close stops the lease loop and the watches and, with RevokeOnClose,
// revokes the lease, so etcd deletes this client's registrations at once
// (bounded by RequestTimeout; the error is returned, and the registrations
// then end with the lease's TTL).
func (c *Client) Close() error {
	c.mu.Lock()
	id := c.current
	c.mu.Unlock()
	var err error
	c.life.Close(func() {
		if c.cfg.RevokeOnClose && id != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
			_, rerr := c.lease.Revoke(ctx, id)
			cancel()
			err = mapErr("revoke lease on close", rerr)
		}
		_ = c.cli.Close()
	})
	c.owned.Take()
	return err
}

// validKey checks an instance's service and id as Register does.
func validKey(service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	return registries.ValidateID(id)
}
