package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/chromedp/chromedp"
)

// unsafeName matches what a screenshot's file name may not hold.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a PNG of the whole page (beyond the window when the page
// is longer) as <name>.png in the test's artifact directory, logs its path
// and returns it. `go test -artifacts -outputdir DIR` keeps the directory
// under DIR; without -artifacts it is a temporary directory removed after
// the test. Each test has its own, so names need only be unique within a
// test; a repeated name gets a number.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	path, err := b.screenshot(ctx, name)
	if err != nil {
		b.t.Fatalf("browser: screenshot %q: %v", name, err)
	}
	b.t.Logf("browser: screenshot %s", path)
	return path
}

// ScreenshotTo saves a PNG of the whole page at path, making its folder:
// e.g. one a test refreshes under docs/ behind an -update flag.
func (b *Browser) ScreenshotTo(path string) {
	b.t.Helper()
	ctx, cancel := b.WaitContext()
	defer cancel()
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = writeScreenshot(ctx, path)
	}
	if err != nil {
		b.t.Fatalf("browser: screenshot to %s: %v", path, err)
	}
	b.t.Logf("browser: screenshot %s", path)
}

// screenshot saves <name>.png in the test's artifact directory.
func (b *Browser) screenshot(ctx context.Context, name string) (string, error) {
	b.shots++
	base := unsafeName.ReplaceAllString(name, "_")
	if base == "" {
		base = "screenshot"
	}
	path := filepath.Join(b.t.ArtifactDir(), base+".png")
	if _, err := os.Stat(path); err == nil {
		path = filepath.Join(b.t.ArtifactDir(), fmt.Sprintf("%s-%d.png", base, b.shots))
	}
	return path, writeScreenshot(ctx, path)
}

func writeScreenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
