package browser

import (
	"errors"
	stdpng "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

// page is the harness's own test page: it logs, answers a click, reaches
// for a host beyond loopback when asked and throws when asked.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title><link rel="icon" href="data:,"></head>
<body>
<p id="status">loading</p>
<button id="go">go</button>
<button id="throw">throw</button>
<script>
const status = document.getElementById("status");
document.getElementById("go").addEventListener("click", () => { status.textContent = "clicked: ünïcode"; });
document.getElementById("throw").addEventListener("click", () => {
  status.textContent = "throwing";
  throw new Error("boom from the page");
});
console.log("hello", 42, {a: 1});
status.textContent = "ready";
</script>
</body></html>`

func servePage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHarness drives the test page through every helper and checks what
// the harness recorded.
func TestHarness(t *testing.T) {
	url := servePage(t)
	var pid int
	t.Run("browse", func(t *testing.T) {
		b := New(t)
		pid = chromedp.FromContext(b.Context()).Browser.Process().Pid
		if !strings.HasPrefix(b.Version(), "Chrome/") {
			t.Errorf("version %q, want Chrome/…", b.Version())
		}

		b.Navigate(url)
		b.WaitText("#status", "ready")
		if got := Eval[string](b, `document.title`); got != "harness" {
			t.Errorf("title %q", got)
		}
		if got := Eval[int](b, Call(`(a, b) => Promise.resolve(a + b)`, 40, 2)); got != 42 {
			t.Errorf("awaited sum %d, want 42", got)
		}

		b.Click("#go")
		if got := b.WaitText("#status", "clicked"); got != "clicked: ünïcode" {
			t.Errorf("status %q", got)
		}
		if !slices.ContainsFunc(b.Console(), func(m Message) bool {
			return m.Kind == KindConsole && m.Level == "log" && strings.HasPrefix(m.Text, "hello 42")
		}) {
			t.Errorf("console.log not recorded: %v", b.Console())
		}
		b.RequireNoExceptions()

		// Beyond loopback: refused at the fence, never resolved.
		if got := Eval[string](b, `fetch("http://regshift-harness.invalid/x").then(() => "reached", e => e.name)`); got != "TypeError" {
			t.Errorf("fetch beyond loopback: %s, want a TypeError (refused)", got)
		}
		if bl := b.Blocked(); len(bl) != 1 || bl[0] != "GET http://regshift-harness.invalid/x" {
			t.Errorf("blocked %q, want the one fetch", bl)
		}
		if fl, _ := b.fence.list(); !slices.ContainsFunc(fl, func(s string) bool { return strings.Contains(s, "regshift-harness.invalid") }) {
			t.Errorf("the fetch did not reach the fence: %q", fl)
		}

		png := b.Screenshot("harness page")
		if filepath.Dir(png) != t.ArtifactDir() || filepath.Base(png) != "harness_page.png" {
			t.Errorf("screenshot at %s, want harness_page.png in %s", png, t.ArtifactDir())
		}
		again := filepath.Join(t.TempDir(), "docs", "shot.png")
		b.ScreenshotTo(again)
		for _, p := range []string{png, again} {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := stdpng.DecodeConfig(f)
			f.Close()
			if err != nil || cfg.Width != 1400 || cfg.Height != 1000 {
				t.Errorf("%s: %dx%d (%v), want a PNG of the 1400x1000 viewport", p, cfg.Width, cfg.Height, err)
			}
		}

		b.Click("#throw")
		b.WaitText("#status", "throwing")
		ex := b.Exceptions()
		if len(ex) != 1 || !strings.Contains(ex[0].Text, "boom from the page") {
			t.Errorf("exceptions %v, want the one thrown", ex)
		}
	})
	// The browser's cleanup waited for its process to exit.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("browser process %d after cleanup: %v, want gone", pid, err)
	}
}

func TestFind(t *testing.T) {
	t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
	if _, err := Find(); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find with a missing %s: %v, want ErrNotFound", EnvChromium, err)
	}
	sh, err := filepath.Abs("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, sh)
	if got, err := Find(); err != nil || got != sh {
		t.Errorf("Find with %s=%s: %q, %v", EnvChromium, sh, got, err)
	}
}

// TestRequireSkipsOutsideCI: without a browser, a test is skipped unless
// CI or REGSHIFT_REQUIRE_SERVERS asks for the servers (then it fails).
func TestRequireSkipsOutsideCI(t *testing.T) {
	var sub *testing.T
	t.Run("no browser", func(t *testing.T) {
		sub = t
		t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
		t.Setenv("CI", "")
		t.Setenv("REGSHIFT_REQUIRE_SERVERS", "")
		Require(t)
		t.Error("Require returned without a browser")
	})
	if !sub.Skipped() {
		t.Error("Require did not skip")
	}
}
