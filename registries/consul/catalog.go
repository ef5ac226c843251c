package consul

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/registries"
)

// The node meta that marks a Catalog's node as regshift's, as consul-k8s
// marks the node it syncs to with external-source=kubernetes.
const (
	NodeMetaSource      = "external-source"
	NodeMetaSourceValue = "regshift"
)

// The Consul SDK call a Catalog makes besides its reader's: every write is
// a transaction.
type txnAPI interface {
	Txn(ops api.TxnOps, q *api.QueryOptions) (bool, *api.TxnResponse, *api.QueryMeta, error)
}

// CatalogConfig holds a Catalog's settings. Start from DefaultCatalogConfig.
type CatalogConfig struct {
	// Config says how to reach the agent (Address, Scheme, Datacenter,
	// Token, TLS) and bounds watches (WatchWait), as for the agent client.
	// CheckTTL, DeregisterCriticalAfter and DeregisterOnClose are not used:
	// entries have no check and outlive Close.
	Config
	// Node is the catalog node the entries are registered on
	// ("regshift-mirrors"): a DNS label, up to 63 letters, digits and '-'.
	// Keep it stable: a writer owns, adopts and deletes the entries of its
	// node only. Two writers that must not touch each other's entries need
	// two nodes.
	Node string
	// NodeAddress is the node's address ("127.0.0.1"). No agent runs there;
	// Consul returns it for an entry without an address of its own, which
	// a Catalog never writes.
	NodeAddress string
}

// DefaultCatalogConfig returns the settings for a local agent and the node
// regshift-mirrors.
func DefaultCatalogConfig() CatalogConfig {
	return CatalogConfig{Config: DefaultConfig(), Node: "regshift-mirrors", NodeAddress: "127.0.0.1"}
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func (c *CatalogConfig) validate() error {
	if err := c.Config.validate(); err != nil {
		return err
	}
	if !nodeRE.MatchString(c.Node) {
		return fmt.Errorf("%w: Node %q must be a DNS label: 1-63 letters, digits and '-', not starting or ending with '-'", ErrConfig, c.Node)
	}
	if err := registries.ValidateAddress(c.NodeAddress); err != nil {
		return fmt.Errorf("%w: NodeAddress: %w", ErrConfig, err)
	}
	return nil
}

// Catalog is a registries.Registry that writes catalog entries on a node of
// its own instead of agent services: the store the coordinator's bridge
// mirrors into (the pattern of consul-k8s's catalog sync).
//
// Register writes a service on Node — a node no agent runs, marked with the
// node meta external-source=regshift — with the agent client's service ID
// ("<service>:<id>"), tags, metadata, address and port, and no health
// check. Nothing keeps an entry alive, so a Catalog holding 10,000 entries
// makes no request while nothing changes; the agent client makes one
// UpdateTTL per instance every CheckTTL/3, and the agent's local state and
// anti-entropy grow with every service it holds.
//
// Every write is one /v1/txn. Register does not use /v1/catalog/register:
// Consul (1.14) reads all the node's services on each such call to check
// ACLs, so registering on a node of n services costs O(n) — measured on the
// dev agent, 8 writers fell from 1,444 to 179 registrations/s between 0 and
// 10,000 entries on the node, while a transaction's service write stayed at
// ~1,500/s. Writing the node in the transaction costs O(n) as well, so
// Register writes only the service, guarded by a read of the node, and
// writes the node too only when it is missing (the first write, or after an
// operator removed it).
//
// Resolve, Watch, Services and Ping are the agent client's: the passing
// instances of every node. An entry without checks counts as passing.
//
// Failure behaviour:
//   - An entry lives in the servers' catalog until it is deregistered. It
//     survives the writer's death or Close and a restart of the agent the
//     writer talks to (no agent owns the node, so no anti-entropy touches
//     it), and a server restart that keeps its data. Nothing expires it: it
//     has no check to turn critical and no reaper removes it. A dev-mode
//     server (-dev) keeps no data: its restart loses every entry.
//   - So the entries of a writer that died keep resolving as passing until
//     a writer with the same Node reconciles them (the bridge's full sync
//     deletes the mirrors whose source instance is gone) or an operator
//     removes the node (docs/registries.md).
//   - Register is an upsert keyed by node and service ID: writing an entry
//     again never duplicates it, and a new writer with the same Node (a new
//     coordinator leader) adopts its predecessor's entries by writing them.
//     Writing an unchanged entry changes nothing in the catalog.
//   - A Catalog holds no desired state: unlike the agent client it neither
//     completes a Register that failed nor restores an entry removed behind
//     its back. Its caller's next reconcile does (the bridge's full sync).
//   - Deregister removes the entry from Node only: an entry with the same
//     service ID on another node (an agent's own registration) stays. It
//     returns ErrNotFound when Node holds no such entry.
type Catalog struct {
	cfg    CatalogConfig
	reader *Client // reads; its connections and lifetime are the Catalog's
	txn    txnAPI
}

var _ registries.Registry = (*Catalog)(nil)

// NewCatalog validates cfg and makes a Catalog; it does not contact the
// agent. A nil logger discards logs.
func NewCatalog(cfg CatalogConfig, log *slog.Logger) (*Catalog, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	readCfg := cfg.Config
	readCfg.DeregisterOnClose = false // it registers nothing
	reader, client, err := newClient(readCfg, log.With("node", cfg.Node))
	if err != nil {
		return nil, err
	}
	return &Catalog{cfg: cfg, reader: reader, txn: client.Txn()}, nil
}

// Register implements registries.Registry: it writes the catalog entry on
// Node, replacing the one with the same service ID, and the node when it
// is missing.
func (c *Catalog) Register(ctx context.Context, inst registries.Instance) error {
	if err := registries.Validate(inst); err != nil {
		return err
	}
	if c.reader.life.Closed() {
		return registries.ErrClosed
	}
	set := &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: c.cfg.Node, Service: api.AgentService{
		ID: serviceID(inst.Service, inst.ID), Service: inst.Service,
		Address: inst.Address, Port: inst.Port, Tags: inst.Tags, Meta: inst.Metadata,
	}}}
	node := api.Node{Node: c.cfg.Node, Address: c.cfg.NodeAddress, Meta: map[string]string{NodeMetaSource: NodeMetaSourceValue}}
	errs, err := c.run(ctx, "register", api.TxnOps{guardOp: {Node: &api.NodeTxnOp{Verb: api.NodeGet, Node: node}}, 1: set})
	if err == nil && failedAt(errs, guardOp) {
		errs, err = c.run(ctx, "register", api.TxnOps{{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: node}}, set})
	}
	if err != nil {
		return err
	}
	return refused("register", inst.Service, inst.ID, errs)
}

// Deregister implements registries.Registry: it removes the entry from Node
// only, guarded by a read of the entry in the same transaction (Consul's
// /v1/catalog/deregister answers a missing entry, even of an unknown node,
// as a success).
func (c *Catalog) Deregister(ctx context.Context, service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	if err := registries.ValidateID(id); err != nil {
		return err
	}
	if c.reader.life.Closed() {
		return registries.ErrClosed
	}
	entry := api.AgentService{ID: serviceID(service, id), Service: service}
	errs, err := c.run(ctx, "deregister", api.TxnOps{
		guardOp: {Service: &api.ServiceTxnOp{Verb: api.ServiceGet, Node: c.cfg.Node, Service: entry}},
		1:       {Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: c.cfg.Node, Service: entry}},
	})
	switch {
	case err != nil:
		return err
	case failedAt(errs, guardOp):
		return fmt.Errorf("consul deregister %s/%s: %w on node %s", service, id, registries.ErrNotFound, c.cfg.Node)
	}
	return refused("deregister", service, id, errs)
}

// guardOp is the index of the read that guards a write transaction: the
// node for Register, the entry for Deregister.
const guardOp = 0

// run runs ops in one transaction and returns the errors of the ops that
// made Consul roll it back (none when it committed).
func (c *Catalog) run(ctx context.Context, op string, ops api.TxnOps) (api.TxnErrors, error) {
	ok, resp, _, err := c.txn.Txn(ops, c.reader.query(ctx))
	switch {
	case err != nil:
		return nil, mapErr(op, err)
	case ok:
		return nil, nil
	case resp == nil || len(resp.Errors) == 0:
		return nil, fmt.Errorf("consul %s: %w: transaction rolled back without a reason", op, registries.ErrUnavailable)
	}
	return resp.Errors, nil
}

// failedAt reports whether op is among the failed ops. Consul first checks
// a transaction's writes (ACL, validation), skipping its reads, and if any
// fails answers with those errors without running anything; else it runs
// every op, collecting each failure, and rolls back when there is one. So
// a failed read can only have found nothing to read.
func failedAt(errs api.TxnErrors, op int) bool {
	for _, e := range errs {
		if e.OpIndex == op {
			return true
		}
	}
	return false
}

// refused is nil without errors, and otherwise the plain (non-retriable)
// error of a transaction Consul refused, with its reasons.
func refused(op, service, id string, errs api.TxnErrors) error {
	if len(errs) == 0 {
		return nil
	}
	whats := make([]string, 0, len(errs))
	for _, e := range errs {
		whats = append(whats, e.What)
	}
	return fmt.Errorf("consul %s %s/%s: refused: %s", op, service, id, strings.Join(whats, "; "))
}

// Resolve implements registries.Registry: the passing instances of every
// node, as the agent client resolves them.
func (c *Catalog) Resolve(ctx context.Context, service string) ([]registries.Instance, error) {
	return c.reader.Resolve(ctx, service)
}

// Watch implements registries.Registry, as the agent client watches.
func (c *Catalog) Watch(ctx context.Context, service string) (<-chan []registries.Instance, error) {
	return c.reader.Watch(ctx, service)
}

// Services implements registries.Registry, as the agent client lists them.
func (c *Catalog) Services(ctx context.Context) ([]string, error) {
	return c.reader.Services(ctx)
}

// Ping implements registries.Registry: the agent answers and knows a
// leader.
func (c *Catalog) Ping(ctx context.Context) error { return c.reader.Ping(ctx) }

// Close ends the watches and closes idle connections. The entries stay.
func (c *Catalog) Close() error { return c.reader.Close() }

// Durable reports that the entries outlive this client and need nothing of
// it (bridge.Durable): a new writer on the same node adopts them as they are.
func (c *Catalog) Durable() bool { return true }
