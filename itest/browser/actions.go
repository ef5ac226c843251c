package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Do runs chromedp actions on the tab within one wait (see Config.Wait)
// and ends the test on error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Navigate loads url in the tab and waits for its load event. The page
// must answer 2xx or 3xx.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("browser: navigate to %s: %v", url, err)
	}
	if resp != nil && resp.Status >= 400 {
		b.t.Fatalf("browser: navigate to %s: HTTP %d %s", url, resp.Status, resp.StatusText)
	}
}

// Click clicks the first element that the CSS selector sel matches, once it
// is visible.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("browser: click %s: %v", sel, err)
	}
}

// SetFiles chooses files for the file input that the CSS selector sel
// matches, as a user picking them would: the input's change event fires and
// the page reads them with the File API (e.g. a key file).
func (b *Browser) SetFiles(sel string, paths ...string) {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(sel), paths)); err != nil {
		b.t.Fatalf("browser: set files of %s to %q: %v", sel, paths, err)
	}
}

// textContains is the predicate of WaitText: the element's textContent when
// it contains want, else false (PollFunction waits for a truthy value).
const textContains = `(sel, want) => {
	const e = document.querySelector(sel);
	return e !== null && e.textContent.includes(want) ? e.textContent : false;
}`

// currentText is the element's textContent, or null without the element.
const currentText = `(sel) => { const e = document.querySelector(sel); return e === null ? null : e.textContent; }`

// WaitText waits until the textContent of the first element that the CSS
// selector sel matches contains want, and returns that text. The page
// checks at every DOM change, not on a timer. It fails the test at the
// wait's deadline (Config.Wait, cut by the test's deadline), saying what
// the element held then.
func (b *Browser) WaitText(sel, want string) string {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	opts := []chromedp.PollOption{chromedp.WithPollingMutation(), chromedp.WithPollingArgs(sel, want)}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, chromedp.WithPollingTimeout(max(time.Until(dl), time.Millisecond)))
	}
	got, err := chromedp.Run(ctx, chromedp.PollFunction[string](textContains, opts...))
	if err == nil {
		return got
	}
	readCtx, cancelRead := context.WithTimeout(b.ctx, b.cfg.Close)
	defer cancelRead()
	now, rerr := chromedp.Run(readCtx, chromedp.Evaluate[[]byte](call(currentText, sel)))
	if rerr != nil {
		now = []byte(fmt.Sprintf("(could not read it: %v)", rerr))
	}
	b.t.Fatalf("browser: waiting for %q in %s: %v; it holds %s", want, sel, err, bound(string(now), 2000))
	return ""
}

// Eval evaluates the JavaScript expression expr in the page, waits for the
// promise it returns if it does, and decodes the value into T (as JSON;
// []byte gives the raw JSON). A thrown exception or a rejected promise
// fails the test.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", bound(expr, 200), err)
	}
	return v
}

// Call is the JavaScript expression that calls the function fn with args,
// each passed as JSON (so strings, numbers, slices, maps and structs arrive
// as JavaScript values): Eval[int](b, Call("(a, b) => a + b", 1, 2)). It
// panics on an argument that encoding/json cannot marshal, as
// regexp.MustCompile does on a bad literal.
func Call(fn string, args ...any) string { return call(fn, args...) }

func call(fn string, args ...any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		j, err := json.Marshal(a)
		if err != nil {
			panic(fmt.Sprintf("browser.Call: argument %d: %v", i, err)) // a test's own literal: a programming error
		}
		parts[i] = string(j)
	}
	return "(" + fn + ")(" + strings.Join(parts, ", ") + ")"
}
