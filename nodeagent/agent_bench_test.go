package nodeagent_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/schema"
)

// BenchmarkCommandAck measures, on the real broker, the time from publishing
// a signed command to reading the agent's ack: p50 and p99 over b.N
// commands sent one at a time to a `regshift agent` process.
func BenchmarkCommandAck(b *testing.B) {
	env := itest.New(b)
	ordersSvc := env.Service("orders")
	p := env.StartAgentProcess(b, itest.Provider("node-bench", ordersSvc))
	env.AwaitHello(b, p.Node, time.Now().Add(-time.Minute))
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		id := "bench-" + strconv.Itoa(i)
		start := time.Now()
		env.Send(b, &schema.Resync{CommandHeader: env.Header(p.Node, id, 1), Reason: "bench"})
		env.AwaitAck(b, p.Node, id)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkAgentRSS reports a `regshift agent` process's resident memory
// idle, and after 10 s of 10 commands per second.
func BenchmarkAgentRSS(b *testing.B) {
	for b.Loop() {
		env := itest.New(b)
		ordersSvc, paymentsSvc := env.Service("orders"), env.Service("payments")
		p := env.StartAgentProcess(b, itest.Both("node-rss", []string{ordersSvc}, []string{paymentsSvc}))
		env.AwaitHello(b, p.Node, time.Now().Add(-time.Minute))
		time.Sleep(2 * time.Second) // settle: a measurement, not a wait for a condition
		idle := rss(b, p.PID())
		tick := time.NewTicker(100 * time.Millisecond)
		for i := range 100 {
			<-tick.C
			env.Send(b, &schema.Resync{CommandHeader: env.Header(p.Node, fmt.Sprint("rss-", i), 1), Reason: "bench"})
		}
		tick.Stop()
		env.AwaitAck(b, p.Node, "rss-99")
		busy := rss(b, p.PID())
		b.ReportMetric(idle/1024, "idle-MB")
		b.ReportMetric(busy/1024, "busy-MB")
	}
}

// rss reads VmRSS (kB) of a process.
func rss(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
