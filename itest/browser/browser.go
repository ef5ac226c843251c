package browser

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// Config is how a test's browser runs. The zero value of a field means its
// default (DefaultConfig).
type Config struct {
	// Width and Height are the window's size in pixels: 1400x1000.
	Width, Height int
	// Wait bounds each helper call that waits (WaitText, Eval, Navigate…):
	// 60s. It is cut to end a little before the test's own deadline
	// (go test -timeout), so a page that never gets there fails the test
	// with its console and a screenshot rather than a panic of the test
	// binary.
	Wait time.Duration
	// Close bounds the graceful close at cleanup before the browser is
	// killed: 10s.
	Close time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Width: 1400, Height: 1000, Wait: 60 * time.Second, Close: 10 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Width == 0 {
		c.Width = d.Width
	}
	if c.Height == 0 {
		c.Height = d.Height
	}
	if c.Wait == 0 {
		c.Wait = d.Wait
	}
	if c.Close == 0 {
		c.Close = d.Close
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Width < 0 || c.Height < 0 {
		errs = append(errs, fmt.Errorf("browser.Config: window %dx%d: want positive sizes", c.Width, c.Height))
	}
	if c.Wait < 0 {
		errs = append(errs, fmt.Errorf("browser.Config.Wait: %s: want positive", c.Wait))
	}
	if c.Close < 0 {
		errs = append(errs, fmt.Errorf("browser.Config.Close: %s: want positive", c.Close))
	}
	return errors.Join(errs...)
}

// deadlineMargin is how long before the test's deadline every wait ends,
// leaving time for the failure report and the cleanup.
const deadlineMargin = 15 * time.Second

// maxOutput bounds the browser's own stderr kept for the failure report.
const maxOutput = 64 << 10

// Browser is a headless Chromium of one test, with one tab. Its helpers
// end the test on error (t.Fatal), so call them from the test's goroutine;
// a subtest that wants a browser starts its own. Context gives the tab's
// chromedp context for anything the helpers do not cover.
type Browser struct {
	t       testing.TB
	cfg     Config
	ctx     context.Context // the tab; the first tab of a browser: cancelling it closes the browser
	console *console
	fence   *fence
	output  *capped
	version string
	shots   int
}

// New starts a fresh headless Chromium for t with DefaultConfig (see
// Start).
func New(t testing.TB) *Browser {
	t.Helper()
	return Start(t, DefaultConfig())
}

// Start starts a fresh headless Chromium for t, in a temporary profile,
// and opens its tab on about:blank. It ends the test as Require does when
// there is no Chromium, and fails it when the browser does not start. At
// t's cleanup it takes a screenshot and logs the console if the test
// failed, then closes the browser and waits until its processes exited
// and its profile is removed.
func Start(t testing.TB, cfg Config) *Browser {
	t.Helper()
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	path := Require(t)
	b := &Browser{t: t, cfg: cfg, console: &console{}, fence: newFence(), output: &capped{max: maxOutput}}
	t.Cleanup(b.fence.close) // runs last: the browser is gone by then

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), b.flags(path)...)
	// chromedp's own complaints go with the browser's stderr: they may
	// come from its goroutines at any time, t.Logf may not.
	logf := func(format string, args ...any) { fmt.Fprintf(b.output, "chromedp: "+format+"\n", args...) }
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	b.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			b.report()
		}
		closeCtx, cancel := context.WithTimeout(ctx, cfg.Close)
		if err := chromedp.Cancel(closeCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("browser: close: %v", err)
		}
		cancel()
		cancelTab()
		cancelAlloc() // waits for the browser's processes and removes the profile
	})

	start := time.Now()
	// The first action starts the browser and binds its life to the
	// context it is given: ctx itself, so the start is bounded by
	// cancelling ctx rather than by a deadline of its own.
	startCtx, cancel := b.WaitContext()
	defer cancel()
	stop := context.AfterFunc(startCtx, cancelTab)
	err := chromedp.Do(ctx)
	if !stop() {
		err = fmt.Errorf("not started in %s: %w", time.Since(start).Round(time.Millisecond), startCtx.Err())
	}
	if err != nil {
		t.Fatalf("browser: start %s: %v\n%s", path, err, b.output.String())
	}
	if err := chromedp.Listen(ctx, b.console.record); err != nil {
		t.Fatalf("browser: listen to the console: %v", err)
	}
	// The window is the size asked for, the page's viewport smaller (by
	// the window's frame): make the viewport the size, for layouts and
	// screenshots that do not depend on the frame.
	if err := chromedp.Do(startCtx, chromedp.EmulateViewport(int64(cfg.Width), int64(cfg.Height))); err != nil {
		t.Fatalf("browser: viewport %dx%d: %v", cfg.Width, cfg.Height, err)
	}
	v, err := chromedp.CallBrowser(startCtx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("browser: version: %v", err)
	}
	b.version = v.Product
	t.Logf("browser: %s (%s) started in %s", b.version, path, time.Since(start).Round(time.Millisecond))
	return b
}

// flags are the command line of the browser: chromedp's defaults (quiet:
// no first run, no background networking, no extensions, no sync, no
// default apps, metrics recording only, …) and ours.
func (b *Browser) flags(path string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		// CI runs as root, where Chromium's sandbox cannot start.
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		// /dev/shm is small in containers; Chromium then crashes.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(b.cfg.Width, b.cfg.Height),
		// No traffic beyond loopback: loopback bypasses every proxy, the
		// rest goes to the fence, and no host name resolves but localhost.
		chromedp.ProxyServer(b.fence.proxy()),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"),
		// Fewer calls home (each one is refused at the fence anyway;
		// Chromium 156 still asks for an on-demand component and for
		// accounts.google.com).
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,NetworkTimeServiceQuerying"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.CombinedOutput(b.output),
	)
}

// Context is the tab's chromedp context, for chromedp actions the helpers
// do not cover. Bound each call with WaitContext.
func (b *Browser) Context() context.Context { return b.ctx }

// Version is the browser's product and version, e.g. "Chrome/156.0.8078.114".
func (b *Browser) Version() string { return b.version }

// WaitContext is the tab's context bounded by Config.Wait and the test's
// deadline: the context of one helper call, and of a chromedp call a test
// makes itself.
func (b *Browser) WaitContext() (context.Context, context.CancelFunc) {
	end := time.Now().Add(b.cfg.Wait)
	if d, ok := b.t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Add(-deadlineMargin).Before(end) {
			end = td.Add(-deadlineMargin)
		}
	}
	return context.WithDeadline(b.ctx, end)
}

// Console returns what the page wrote to its console so far: console API
// calls, uncaught exceptions and the browser's own log entries, oldest
// first (at most 1000; later ones are counted, not kept).
func (b *Browser) Console() []Message {
	m, _ := b.console.list()
	return m
}

// Exceptions returns the uncaught exceptions and unhandled promise
// rejections so far.
func (b *Browser) Exceptions() []Message {
	var out []Message
	for _, m := range b.Console() {
		if m.Kind == KindException {
			out = append(out, m)
		}
	}
	return out
}

// RequireNoExceptions fails the test if the page threw an exception that
// nothing caught, or left a promise rejection unhandled. An exception
// thrown before a helper call returned is already recorded when it returns.
func (b *Browser) RequireNoExceptions() {
	b.t.Helper()
	if ex := b.Exceptions(); len(ex) > 0 {
		lines := make([]string, len(ex))
		for i, m := range ex {
			lines[i] = "\t" + m.String()
		}
		b.t.Fatalf("browser: %d uncaught JavaScript exception(s):\n%s", len(ex), strings.Join(lines, "\n"))
	}
}

// Blocked returns the requests the page made beyond 127.0.0.1 and
// localhost ("GET http://host/path"), oldest first (at most 100): none of
// them reached the network (see the package doc), so a page that needs
// one is broken in the test.
func (b *Browser) Blocked() []string { return b.console.blocked() }

// report logs the console, the refused requests and the browser's stderr,
// and takes a screenshot: what a failed test leaves behind.
func (b *Browser) report() {
	msgs, dropped := b.console.list()
	var sb strings.Builder
	fmt.Fprintf(&sb, "browser: console (%d messages", len(msgs))
	if dropped > 0 {
		fmt.Fprintf(&sb, ", %d more not kept", dropped)
	}
	sb.WriteString("):\n")
	for _, m := range msgs {
		sb.WriteString("\t" + m.String() + "\n")
	}
	if bl := b.Blocked(); len(bl) > 0 {
		fmt.Fprintf(&sb, "browser: the page's requests beyond 127.0.0.1, all refused:\n\t%s\n", strings.Join(bl, "\n\t"))
	}
	if bl, more := b.fence.list(); len(bl) > 0 {
		fmt.Fprintf(&sb, "browser: requests refused at the proxy, the browser's own (Google services) included (%d more not kept):\n\t%s\n", more, strings.Join(bl, "\n\t"))
	}
	if out := stderrReport(b.output.String()); out != "" {
		sb.WriteString("browser: its stderr:\n" + out)
	}
	b.t.Log(sb.String())
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Close)
	defer cancel()
	if path, err := b.screenshot(ctx, "failure"); err != nil {
		b.t.Logf("browser: failure screenshot: %v", err)
	} else {
		b.t.Logf("browser: failure screenshot: %s", path)
	}
}

// stderrReport is the browser's stderr without the lines that say there
// is no D-Bus (there is none on a test machine; Chromium says so dozens
// of times) and without the Debian launcher's complaint about /dev/shm.
func stderrReport(out string) string {
	var kept []string
	noise := 0
	for _, l := range strings.SplitAfter(out, "\n") {
		if strings.Contains(l, ":ERROR:dbus/") || strings.Contains(l, "/usr/bin/chromium: 9: [:") {
			noise++
			continue
		}
		kept = append(kept, l)
	}
	if noise > 0 {
		kept = append(kept, fmt.Sprintf("(%d lines about D-Bus and /dev/shm left out)\n", noise))
	}
	return strings.Join(kept, "")
}

// capped is a writer that keeps the first max bytes written to it.
type capped struct {
	mu   sync.Mutex
	max  int
	b    []byte
	lost int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(p), c.max-len(c.b))
	c.b = append(c.b, p[:n]...)
	c.lost += len(p) - n
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost > 0 {
		return fmt.Sprintf("%s\n… %d more bytes not kept\n", c.b, c.lost)
	}
	return string(c.b)
}
