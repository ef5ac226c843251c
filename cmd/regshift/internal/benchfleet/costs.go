package benchfleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// unitCosts are what one command and one state record cost on this
// machine, measured at the start of a run with the functions the
// coordinator and an agent call, one at a time on one goroutine.
type unitCosts struct {
	// sign is the Ed25519 signature of one command (events.Signer.Sign);
	// encode is events.Encoder.Encode of it without a signer (marshal,
	// schema validation, envelope), as the coordinator's owner encodes
	// every command.
	sign, encode map[schema.CommandKind]time.Duration
	// verify is events.CommandVerifier.Decode of one command record, as the
	// fleet (and an agent) verifies it.
	verify map[schema.CommandKind]time.Duration
	// state is events.Encoder.Encode, signed, of one node record with a
	// pending command: what the owner does for each state record it writes.
	state time.Duration
	// verifyAck and verifyHealth are events.EventVerifier.Decode of one
	// ack and one health report as the fleet builds them, signed by their
	// node (unsigned with -unsigned-events, the verifier allowing it), as
	// the coordinator decodes every event it folds; signAck and signHealth
	// the fleet signing one (0 unsigned).
	verifyAck, verifyHealth, signAck, signHealth time.Duration
}

// costBudget is how long each figure is measured for.
const costBudget = 100 * time.Millisecond

// measureCosts measures the unit costs with a fresh key, commands of plan p
// shaped as the coordinator's owner builds them (coordinator/server's wire),
// events as the fleet builds them, signed unless unsigned.
func measureCosts(topics events.Topics, p schema.Plan, unsigned bool) (unitCosts, error) {
	c := unitCosts{sign: map[schema.CommandKind]time.Duration{}, encode: map[schema.CommandKind]time.Duration{},
		verify: map[schema.CommandKind]time.Duration{}}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return c, err
	}
	signer, err := events.NewSigner(keyID, priv)
	if err != nil {
		return c, err
	}
	keys := events.NewKeyring()
	if err := keys.Add(keyID, pub); err != nil {
		return c, err
	}
	signed := &events.Encoder{Topics: topics, Source: "regshift/coordinator/" + keyID, Signer: signer}
	plain := &events.Encoder{Topics: topics, Source: signed.Source}
	node := p.Nodes[0].NodeID
	v, err := events.NewCommandVerifier(events.DefaultCommandVerifierConfig(node), keys, &node0{})
	if err != nil {
		return c, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, s := range steps {
		cmd := benchCommand(p, node, s.kind, now)
		var rec kafka.Message
		var errs error
		rec, errs = signed.Encode(cmd)
		if errs != nil {
			return c, fmt.Errorf("encode a %s: %w", s.kind, errs)
		}
		body, err := schema.Encode(cmd)
		if err != nil {
			return c, err
		}
		spec, err := schema.Lookup(cmd.MessageType())
		if err != nil {
			return c, err
		}
		c.sign[s.kind] = perOp(func() { signer.Sign(spec.Type, body) })
		// Measured on its own, not as full minus sign: the difference of two
		// noisy timings can come out at or below zero on a loaded machine.
		c.encode[s.kind] = perOp(func() { _, errs = plain.Encode(cmd) })
		if errs != nil {
			return c, fmt.Errorf("encode a %s unsigned: %w", s.kind, errs)
		}
		c.verify[s.kind] = perOp(func() { _, errs = v.Decode(rec) })
		if errs != nil {
			return c, fmt.Errorf("verify a %s: %w", s.kind, errs)
		}
	}
	ref := schema.CommandRef{ID: coordinator.CommandID(rolloutID, node, schema.CommandActivate), Node: node, Kind: schema.CommandActivate,
		Interface: p.To.Name}
	nr := &schema.NodeRecord{RolloutID: rolloutID, ID: node, Roles: p.Nodes[0].Roles, Wave: 3, Reached: schema.ReachedInstalled, Touched: true,
		Pending: &schema.PendingCommand{Command: ref, FirstSent: now, LastSent: now, Sends: 1}}
	var errs error
	c.state = perOp(func() { _, errs = signed.Encode(nr) })
	if errs != nil {
		return c, fmt.Errorf("encode a node record: %w", errs)
	}
	return c, measureEventCosts(&c, topics, p, node, unsigned)
}

// measureEventCosts measures what the fleet and the coordinator spend on
// one ack and one health report of node id.
func measureEventCosts(c *unitCosts, topics events.Topics, p schema.Plan, id string, unsigned bool) error {
	n := &node{id: id, source: "regshift/agent/" + id}
	n.phase.Store(uint32(installed))
	keys := events.NewKeyring()
	if !unsigned {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		if err := keys.Add(id, pub); err != nil {
			return err
		}
		n.key = priv
	}
	v, err := events.NewEventVerifier(events.EventVerifierConfig{AllowUnsigned: unsigned}, keys)
	if err != nil {
		return err
	}
	f := &fleet{from: p.From.Name, to: p.To.Name}
	ack := &schema.Ack{NodeID: id, CommandID: coordinator.CommandID(rolloutID, id, schema.CommandInstall), RolloutID: rolloutID, Epoch: 1,
		Outcome: schema.AckDone, At: now()}
	for _, e := range []struct {
		m            schema.Message
		sign, verify *time.Duration
	}{{ack, &c.signAck, &c.verifyAck}, {f.healthOf(n), &c.signHealth, &c.verifyHealth}} {
		rec, _, err := eventRecord(topics, n, e.m)
		if err != nil {
			return err
		}
		var errs error
		*e.verify = perOp(func() { _, errs = v.Decode(rec) })
		if errs != nil {
			return fmt.Errorf("verify a %s: %w", e.m.MessageType(), errs)
		}
		if n.key != nil {
			env, err := events.ParseEnvelope(rec)
			if err != nil {
				return err
			}
			*e.sign = perOp(func() { ed25519.Sign(n.key, events.PAE(env.Type, env.Data)) })
		}
	}
	return nil
}

// benchCommand is the command of kind the coordinator sends node.
func benchCommand(p schema.Plan, node string, kind schema.CommandKind, now time.Time) schema.Command {
	h := schema.CommandHeader{NodeID: node, CommandID: coordinator.CommandID(rolloutID, node, kind), RolloutID: rolloutID, Epoch: 1,
		IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), PackageDigest: p.To.Package.Digest}
	switch kind {
	case schema.CommandInstall:
		return &schema.Install{CommandHeader: h, Interface: p.To}
	case schema.CommandActivate:
		return &schema.Activate{CommandHeader: h, Interface: p.To.Name}
	}
	return &schema.Uninstall{CommandHeader: h, Interface: p.From.Name}
}

// perOp runs f for at least costBudget and returns the mean time of a run.
func perOp(f func()) time.Duration {
	start, n := time.Now(), 0
	for ; n < 10 || time.Since(start) < costBudget; n++ {
		f()
	}
	return time.Since(start) / time.Duration(n)
}

// node0 is a replay state that has seen nothing: every verification of the
// same command passes every check.
type node0 struct{}

func (*node0) HighestEpoch() uint64   { return 0 }
func (*node0) Applied(id string) bool { return false }

var _ events.ReplayState = (*node0)(nil)
