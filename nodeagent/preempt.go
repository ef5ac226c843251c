package nodeagent

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// errSwitchBackWaiting is why an install's fetch is cancelled.
var errSwitchBackWaiting = errors.New("a switch-back is waiting behind this install")

// recordSource is the part of a kafka.Reader the switch-back watch reads.
type recordSource interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// switchBackWaiting reads src until it finds a switch-back for this node
// that dec verifies (so a forged one cancels nothing), and reports whether
// it found one before ctx ended or src failed.
func switchBackWaiting(ctx context.Context, src recordSource, dec events.Decoder) bool {
	for {
		rec, err := src.FetchMessage(ctx)
		if err != nil {
			return false
		}
		if d, err := dec.Decode(rec); err == nil {
			if _, ok := d.Message.(*schema.SwitchBack); ok {
				return true
			}
		}
	}
}

// preemptible returns the context an install runs in: cancelled, with
// errSwitchBackWaiting as its cause, as soon as a verified switch-back for
// this node stands after rec on the commands partition. A node's commands
// share one partition and are carried out in order, so without this a slow
// package server would hold the switch-back for a whole fetch timeout — and
// again for every re-sent install queued before it. stop ends the watch;
// call it when the install is done.
func (a *Agent) preemptible(ctx context.Context, rec kafka.Message) (run context.Context, stop func()) {
	run, cancel := context.WithCancelCause(ctx)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: a.cfg.Kafka.Brokers, Topic: rec.Topic, Partition: rec.Partition,
		Dialer: a.sec.Dialer(), MaxWait: a.cfg.HealthInterval})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.SetOffset(rec.Offset + 1); err != nil {
			return
		}
		if switchBackWaiting(run, r, a.verifier) {
			a.log.Info("cancelling an install: a switch-back is waiting", "offset", rec.Offset)
			cancel(errSwitchBackWaiting)
		}
	}()
	return run, func() {
		cancel(nil)
		<-done
		_ = r.Close()
	}
}
