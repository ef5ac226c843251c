// Package browser runs regshift's browser tests: a fresh headless Chromium
// for each test, driven with chromedp, that can only reach 127.0.0.1.
//
//	srv := httptest.NewServer(handler) // the page under test, on 127.0.0.1
//	b := browser.New(t)                // Chromium, closed at t's cleanup
//	b.Navigate(srv.URL + "/console")
//	b.WaitText("#status", "ready")     // waits on DOM changes, no sleeps
//	b.SetFiles("#key", keyPath)        // a user picking a file
//	b.Click("#pause")
//	sig := browser.Eval[string](b, browser.Call(`(id) => sign(id)`, "r-1"))
//	b.Screenshot("paused")              // <name>.png in t.ArtifactDir()
//	b.RequireNoExceptions()
//
// Every helper ends the test on error and waits at most Config.Wait (60s),
// cut to end 15s before the test's own deadline so that a page that never
// gets there fails with a report rather than a panic of `go test -timeout`.
// For anything else, Context is the tab's chromedp context (chromedp
// v0.23: chromedp.Run(ctx, action) returns the action's value).
//
// # Finding Chromium
//
// Require (which New calls) takes REGSHIFT_CHROMIUM when it is set, else
// chromium or chromium-browser in PATH, else /usr/bin/chromium: Debian's
// `apt-get install chromium`, which `make deps` runs. Without one, the test
// fails under CI=true or REGSHIFT_REQUIRE_SERVERS=1, as a missing server
// does (see itest/servers), and is skipped elsewhere.
//
// # The browser
//
// Each Browser is its own Chromium process with a temporary profile (no
// state between tests), started with chromedp's quiet defaults (no first
// run, no background networking, no extensions, no sync, no default apps,
// metrics recording only, no breakpad…) and
//
//	--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage
//	--window-size=1400,1000 (and a 1400x1000 viewport)
//	--proxy-server=http://127.0.0.1:<fence>
//	--host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"
//	--disable-component-update --disable-domain-reliability --no-pings
//	--disable-features=Translate,BlinkGenPropertyTrees,NetworkTimeServiceQuerying
//
// --no-sandbox because CI runs as root, where Chromium's sandbox cannot
// start; the pages are the test's own. --disable-dev-shm-usage because
// /dev/shm is small in containers.
//
// No traffic leaves 127.0.0.1: Chromium sends loopback requests directly
// and every other one to its proxy, the fence, a server of the harness on
// 127.0.0.1 that refuses them all, and no host name resolves but
// localhost. The page's own requests beyond loopback are listed by
// Blocked; Chromium 156 still makes a few of its own (an on-demand
// component from update.googleapis.com, accounts.google.com), which the
// fence refuses as well.
//
// At cleanup the browser is closed (gracefully, then killed after
// Config.Close) and the cleanup waits until its processes exited and its
// profile is removed.
//
// # What a test can read, and what a failure leaves
//
// The tab's console is recorded from the start: console API calls,
// uncaught exceptions and unhandled rejections, and the browser's own log
// (a resource that failed to load, a security warning) — Console,
// Exceptions, RequireNoExceptions. An event that happened before a helper
// returned is recorded when it returns.
//
// Screenshot saves a full-page PNG in t.ArtifactDir(): a temporary folder
// removed after the test, unless `go test -artifacts -outputdir DIR` keeps
// it under DIR/_artifacts (the test log names the folder). ScreenshotTo
// saves one at a path of the test's choosing. When a test fails, its
// cleanup logs the console, the refused requests and the browser's stderr,
// and saves failure.png.
//
// The console's sign.js (coordinator/server/console) signs a request with
// WebCrypto exactly as events.Signer does; TestWebCryptoSignsLikeGo proves
// it on that very file.
package browser
