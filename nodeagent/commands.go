package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// consume reads this node's commands partition from the persisted offset.
func (a *Agent) consume(ctx context.Context) error {
	var n int
	err := retryUntil(ctx, func() error {
		var err error
		n, err = events.PartitionCount(ctx, a.sec, a.cfg.Kafka.Brokers, a.topics.Commands)
		return err
	}, a.log, "commands topic")
	if err != nil {
		return nil // ctx ended
	}
	partition := events.Partition([]byte(a.cfg.Node), n)
	vcfg := events.DefaultCommandVerifierConfig(a.cfg.Node)
	vcfg.MaxSkew, vcfg.Now = a.cfg.Trust.MaxClockSkew, a.deps.Now
	v, err := events.NewCommandVerifier(vcfg, a.keys, replay{a})
	if err != nil {
		return err
	}
	a.verifier = v
	ccfg := events.DefaultConsumerConfig(a.cfg.Kafka.Brokers, a.topics.Commands, a.topics.DLQ)
	ccfg.Security = a.sec
	c, err := events.NewPartitionConsumer(ccfg, partition, offsets{a}, commandDecoder{a: a, v: v}, a.handle, a.prod, a.log, a.evm)
	if err != nil {
		return err
	}
	a.log.Info("consuming commands", "topic", a.topics.Commands, "partition", partition, "of", n)
	err = c.WithName(a.cfg.Node).Run(ctx)
	if ctx.Err() != nil {
		return nil // stopping: an offset save cut short by ctx is no failure
	}
	return err
}

// handle carries out one verified command: decide, execute, persist, ack.
func (a *Agent) handle(ctx context.Context, d events.Delivery) error {
	a.work.Lock()
	defer a.work.Unlock()
	start := a.deps.Now()
	cmd := d.Message.(schema.Command)
	h := cmd.Header()
	nc, err := toCommand(cmd)
	a.mu.Lock()
	old := a.cp
	a.mu.Unlock()
	var next State
	var ack Ack
	if err != nil {
		next, ack = old.State, Ack{CommandID: h.CommandID, Status: schema.AckRejected, Reason: reasonOf(ReasonMissingArgument, err.Error())}
	} else {
		run, stop := ctx, func() {}
		if nc.Kind == schema.CommandInstall {
			run, stop = a.preemptible(ctx, d.Record)
		}
		next, ack = a.host.Execute(run, old.State, Decide(old.State, nc))
		stop()
	}
	cp := old
	cp.State, cp.Epoch = next, max(old.Epoch, h.Epoch)
	// Unsaved work must not be acked: keep trying (a full or failing disk)
	// until it is saved or the agent stops.
	if err := retryUntil(ctx, func() error { return a.store.Save(cp) }, a.log, "the state to persist"); err != nil {
		return err
	}
	a.mu.Lock()
	a.cp.State, a.cp.Epoch = cp.State, cp.Epoch
	a.mu.Unlock()
	a.m.commands.WithLabelValues(string(nc.Kind), string(ack.Status)).Inc()
	a.m.commandSeconds.Observe(a.deps.Now().Sub(start).Seconds())
	a.log.Info("command", "id", h.CommandID, "kind", nc.Kind, "interface", nc.Interface, "outcome", ack.Status, "reason", ack.Reason)
	a.notifyChange()
	return a.publish(ctx, a.ackOf(h, ack))
}

func (a *Agent) ackOf(h schema.CommandHeader, ack Ack) *schema.Ack {
	return &schema.Ack{NodeID: a.cfg.Node, CommandID: h.CommandID, RolloutID: h.RolloutID, Epoch: h.Epoch,
		Outcome: ack.Status, Reason: ack.Reason, At: a.deps.Now().UTC()}
}

// toCommand maps a wire command to the state machine's.
func toCommand(cmd schema.Command) (Command, error) {
	h := cmd.Header()
	switch c := cmd.(type) {
	case *schema.Install:
		if c.Interface.Package.Digest != h.PackageDigest {
			return Command{}, fmt.Errorf("the package digest %s differs from the signed header's %s", c.Interface.Package.Digest, h.PackageDigest)
		}
		return Command{ID: h.CommandID, Kind: schema.CommandInstall, Interface: c.Interface.Name, PackageURL: c.Interface.Package.URL, Digest: c.Interface.Package.Digest}, nil
	case *schema.Activate:
		return Command{ID: h.CommandID, Kind: schema.CommandActivate, Interface: c.Interface}, nil
	case *schema.SwitchBack:
		return Command{ID: h.CommandID, Kind: schema.CommandSwitchBack, Interface: c.From, To: c.To}, nil
	case *schema.Uninstall:
		return Command{ID: h.CommandID, Kind: schema.CommandUninstall, Interface: c.Interface}, nil
	case *schema.Resync:
		return Command{ID: h.CommandID, Kind: schema.CommandResync}, nil
	}
	return Command{}, fmt.Errorf("unknown command type %T", cmd)
}

// commandDecoder verifies commands and answers those it refuses — only
// those whose coordinator signature verified: a duplicate is acked done
// again (its work was done), a command for another node, outside its
// validity window or of a stale epoch is acked rejected with its reason,
// for the command id of the signed header. A record that fails at or
// before the signature (unsigned, unknown or revoked key, bad signature,
// broken envelope) or whose signed body breaks its schema is not answered
// at all: its id is not the coordinator's, and answering would turn a
// forgery into this node's signed ack. The record then goes where the
// transport sends it (skipped or dead-lettered, with its reason).
type commandDecoder struct {
	a *Agent
	v *events.CommandVerifier
}

func (d commandDecoder) Decode(rec kafka.Message) (events.Delivery, error) {
	del, err := d.v.Decode(rec)
	if err == nil || errors.Is(err, events.ErrSkip) {
		return del, err
	}
	reason, _ := events.ReasonOf(err)
	var refused *events.RefusedCommand
	if !errors.As(err, &refused) {
		d.a.m.commands.WithLabelValues("unverified", "unanswered").Inc()
		d.a.log.Warn("unverified command dead-lettered without an answer", "reason", reason, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return del, err
	}
	h := refused.Header
	ack := Ack{CommandID: h.CommandID, Status: schema.AckRejected, Reason: reasonOf(string(reason), err.Error())}
	if reason == events.ReasonDuplicate {
		ack = Ack{CommandID: h.CommandID, Status: schema.AckDone, Reason: ReasonDuplicate}
	}
	d.a.m.commands.WithLabelValues("refused", string(ack.Status)).Inc()
	d.a.log.Warn("command refused", "id", h.CommandID, "reason", reason, "err", err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if perr := d.a.publish(ctx, d.a.ackOf(h, ack)); perr != nil {
		d.a.log.Warn("could not answer a refused command", "id", h.CommandID, "err", perr)
	}
	return del, err
}

// replay lets the verifier read the persisted epoch and applied ids.
type replay struct{ a *Agent }

func (r replay) HighestEpoch() uint64 {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.cp.Epoch
}

func (r replay) Applied(id string) bool {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	return r.a.cp.State.applied(id)
}

// offsets keeps the commands partition's position in the checkpoint.
type offsets struct{ a *Agent }

func (o offsets) Load(context.Context) (int64, error) {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	return o.a.cp.CommandsOffset, nil
}

// Save persists the offset, retrying as a state save does: a full or
// failing disk stalls the commands partition until the offset is saved, but
// the agent keeps serving (local API, health, registrations) instead of
// exiting, deregistering and crash-looping. It fails only when ctx ends. The
// lock is not held while the disk is written: only the command loop, which
// calls Save, changes the checkpoint.
func (o offsets) Save(ctx context.Context, next int64) error {
	o.a.mu.Lock()
	cp := o.a.cp
	o.a.mu.Unlock()
	cp.CommandsOffset = next
	if err := retryUntil(ctx, func() error { return o.a.store.Save(cp) }, o.a.log, "the commands offset to persist"); err != nil {
		return err
	}
	o.a.mu.Lock()
	o.a.cp.CommandsOffset = next
	o.a.mu.Unlock()
	return nil
}

type metrics struct {
	commands       *prometheus.CounterVec
	commandSeconds prometheus.Histogram
	checksFailing  prometheus.Gauge
	probesFailing  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "regshift", Subsystem: "agent", Name: "commands_total",
			Help: "Commands handled, by kind and outcome (done, failed, rejected); kind refused: verified but refused (a duplicate is done), kind unverified: not answered (outcome unanswered)."}, []string{"kind", "outcome"}),
		commandSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "regshift", Subsystem: "agent", Name: "command_duration_seconds",
			Help: "Time from a verified command to its persisted outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}),
		checksFailing: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "regshift", Subsystem: "agent", Name: "app_checks_failing",
			Help: "The host's app checks (services[].check) that are critical, as of the last health report."}),
		probesFailing: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "regshift", Subsystem: "agent", Name: "probe_failing_services",
			Help: "Consumed services whose endpoints refuse through the primary interface and accept through the fallback, as of the last health report."}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.commandSeconds, m.checksFailing, m.probesFailing} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
