package benchfleet

import (
	"sync"
	"time"
)

// published counts the events the fleet queues, acks and health reports
// apart, by the millisecond of their ce_time since the fleet was built: a
// burst's accounting takes those within its round, what the coordinator
// verified and folded meanwhile.
type published struct {
	mu    sync.Mutex
	start int64         // Unix milliseconds
	ms    []eventsOfOne // by millisecond since start
}

type eventsOfOne struct{ acks, health int32 }

func newPublished(start time.Time) *published { return &published{start: start.UnixMilli()} }

// add counts one event stamped at.
func (p *published) add(at time.Time, ack bool) {
	i := at.UnixMilli() - p.start
	if i < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := int(i) + 1; n > len(p.ms) {
		p.ms = append(p.ms, make([]eventsOfOne, n-len(p.ms))...)
	}
	if ack {
		p.ms[i].acks++
	} else {
		p.ms[i].health++
	}
}

// within sums the events stamped from..to (by the millisecond).
func (p *published) within(from, to time.Time) (acks, health int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lo, hi := max(from.UnixMilli()-p.start, 0), min(to.UnixMilli()-p.start, int64(len(p.ms))-1)
	for i := lo; i <= hi; i++ {
		acks, health = acks+int64(p.ms[i].acks), health+int64(p.ms[i].health)
	}
	return acks, health
}
