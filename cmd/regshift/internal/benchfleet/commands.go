package benchfleet

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// commandDecoder hands each record to its node's command verifier and,
// like an agent, answers what the verifier refuses: a duplicate is acked
// done again (its work was done), anything else rejected with its reason.
type commandDecoder struct{ f *fleet }

func (d commandDecoder) Decode(rec kafka.Message) (events.Delivery, error) {
	n := d.f.byID[string(rec.Key)]
	if n == nil {
		return events.Delivery{}, events.ErrSkip
	}
	del, err := n.verifier.Decode(rec)
	if err == nil || errors.Is(err, events.ErrSkip) {
		return del, err
	}
	reason, _ := events.ReasonOf(err)
	// The body is not trusted here: it only addresses the answer.
	var claimed schema.CommandHeader
	_ = json.Unmarshal(rec.Value, &claimed)
	claimed.NodeID = n.id
	outcome, why := schema.AckRejected, string(reason)+": "+err.Error()
	if reason == events.ReasonDuplicate {
		d.f.duplicates.Add(1)
		outcome, why = schema.AckDone, string(events.ReasonDuplicate)
	} else {
		d.f.refused.Add(1)
		d.f.log.Warn("command refused", "node", n.id, "reason", reason, "err", err)
	}
	d.f.answer(context.Background(), n, claimed, outcome, schema.Truncate(why, schema.MaxDetail))
	return del, err
}

// handle carries out a verified command on its node's state and answers it.
func (f *fleet) handle(ctx context.Context, d events.Delivery) error {
	cmd := d.Message.(schema.Command) // the commands topic carries only commands
	h := cmd.Header()
	n := f.byID[h.NodeID]
	var kind schema.CommandKind
	switch cmd.(type) {
	case *schema.Install:
		n.phase.Store(uint32(installed))
		kind = schema.CommandInstall
	case *schema.Activate:
		n.phase.Store(uint32(onNew))
		kind = schema.CommandActivate
	case *schema.Uninstall:
		n.phase.Store(uint32(uninstalled))
		kind = schema.CommandUninstall
	case *schema.SwitchBack:
		n.phase.Store(uint32(switchedBack))
		f.switchBacks.Add(1)
		kind = schema.CommandSwitchBack
	}
	n.record(h)
	f.commands.Add(1)
	f.rounds.command(kind, n.index, d.Envelope.Time, time.Now()) // before the ack can be out, and folded
	f.answer(ctx, n, h, schema.AckDone, "")
	return nil
}

// answer queues the ack of a command and, as an agent reports on every
// change, the node's health right behind it (same key, same partition: the
// coordinator folds the ack first).
func (f *fleet) answer(ctx context.Context, n *node, h schema.CommandHeader, outcome schema.AckOutcome, reason string) {
	ack := &schema.Ack{NodeID: n.id, CommandID: h.CommandID, RolloutID: h.RolloutID, Epoch: h.Epoch, Outcome: outcome, Reason: reason, At: now()}
	f.publish(ctx, n, ack)
	f.acks.Add(1)
	f.publish(ctx, n, f.healthOf(n))
}

// record remembers that the command was applied, the way the agent's
// checkpoint does (here only the last few ids: a node gets at most install,
// activate and uninstall or switch-back).
func (n *node) record(h schema.CommandHeader) {
	n.applied[n.next%len(n.applied)] = idHash(h.CommandID)
	n.next++
	n.epoch = max(n.epoch, h.Epoch)
}

// HighestEpoch implements events.ReplayState.
func (n *node) HighestEpoch() uint64 { return n.epoch }

// Applied implements events.ReplayState.
func (n *node) Applied(id string) bool {
	h := idHash(id)
	for i := range min(n.next, len(n.applied)) {
		if n.applied[i] == h {
			return true
		}
	}
	return false
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

var _ events.ReplayState = (*node)(nil)
