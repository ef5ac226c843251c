package benchfleet

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/regshift/regshift/itest/browser"
)

// consoleCosts is what the console page measured of itself (app.js's
// st.metrics).
type consoleCosts struct {
	Events        float64 `json:"events"`        // stream events applied
	ApplyMs       float64 `json:"applyMs"`       // their JavaScript time, in all
	MaxApplyMs    float64 `json:"maxApplyMs"`    // the longest one
	Rows          float64 `json:"rows"`          // node rows applied
	SnapshotMs    float64 `json:"snapshotMs"`    // drawing the snapshot, layout included
	FirstRenderAt float64 `json:"firstRenderAt"` // from the navigation's start to the drawn rollout
	LongTasks     float64 `json:"longTasks"`     // tasks over 50 ms (the page froze)
	MaxLongTaskMs float64 `json:"maxLongTaskMs"`
}

// BenchmarkConsole opens the console in Chromium on a simulated fleet's
// rollout (the fleet bench: N nodes on the embedded broker) once the
// rollout is created, follows it to its end, and reports the page's own
// figures: the time to first render (from navigation start to the drawn
// rollout, N grid cells included) and the JavaScript cost of the live
// updates (per stream event, per node row, the longest, and tasks over
// 50 ms, which freeze a page). One rollout per size:
//
//	go test -run '^$' -bench Console -benchtime 1x ./cmd/regshift/internal/benchfleet/
func BenchmarkConsole(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				benchConsole(b, n)
			}
		})
	}
}

func benchConsole(b *testing.B, nodes int) {
	br := browser.New(b)
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Soak, cfg.Health, cfg.Timeout = nodes, 2*time.Second, 5*time.Second, 10*time.Minute
	var wg sync.WaitGroup
	var opened error
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cfg.OnAPI = func(api string) {
		wg.Go(func() {
			// Open the page once the rollout exists: its whole state first.
			for ctx.Err() == nil {
				resp, err := http.Get(api + "/v1/rollouts/" + RolloutID)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			_, opened = chromedp.Run(br.Context(), chromedp.NavigateResponse(api+"/#/rollouts/"+RolloutID))
		})
	}
	b.ResetTimer()
	res, err := Run(ctx, cfg, testLog(b))
	b.StopTimer()
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if opened != nil {
		b.Fatal(opened)
	}
	c := browser.Eval[consoleCosts](br, "window.regshiftConsole.metrics")
	br.Screenshot(fmt.Sprintf("console-%d", nodes))
	br.RequireNoExceptions()
	if c.FirstRenderAt <= 0 || c.Events <= 0 {
		b.Fatalf("the page measured nothing: %+v (rollout %s)", c, res.Phase)
	}
	b.ReportMetric(c.FirstRenderAt, "ms-first-render")
	b.ReportMetric(c.SnapshotMs, "ms-draw-snapshot")
	b.ReportMetric(c.ApplyMs/c.Events, "ms/event")
	b.ReportMetric(c.MaxApplyMs, "ms-max-event")
	if c.Rows > 0 {
		b.ReportMetric(1000*c.ApplyMs/c.Rows, "µs/row")
	}
	b.ReportMetric(c.Events, "events")
	b.ReportMetric(c.LongTasks, "long-tasks")
	b.ReportMetric(c.MaxLongTaskMs, "ms-max-long-task")
	b.Logf("%d nodes, rollout %s in %s: %+v", nodes, res.Phase, res.Elapsed.Round(time.Second), c)
}
