package browser

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/regshift/regshift/itest/servers"
)

// EnvChromium names the environment variable that points at the browser to
// use, ahead of the search in PATH.
const EnvChromium = "REGSHIFT_CHROMIUM"

// ErrNotFound is wrapped by Find when no Chromium is installed.
var ErrNotFound = errors.New("chromium not found")

// candidates are where Find looks after REGSHIFT_CHROMIUM, in order.
var candidates = []string{"chromium", "chromium-browser", "/usr/bin/chromium"}

// Find returns the path of the Chromium to run: REGSHIFT_CHROMIUM when set
// (it must then name an executable), else the first of chromium and
// chromium-browser in PATH, else /usr/bin/chromium.
func Find() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNotFound, EnvChromium, p, err)
		}
		return path, nil
	}
	for _, c := range candidates {
		if path, err := exec.LookPath(c); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: %s is unset and none of %q is an executable", ErrNotFound, EnvChromium, candidates)
}

// Require returns the path of Chromium (see Find), or ends the test: it
// fails under CI=true or REGSHIFT_REQUIRE_SERVERS=1 (servers.Required), as
// a missing server does, and is skipped elsewhere, the message naming
// `make deps`.
func Require(t testing.TB) string {
	t.Helper()
	path, err := Find()
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%v\n\tinstall it with `make deps` (Debian: apt-get install chromium), or set %s to a Chromium or Chrome binary", err, EnvChromium)
	if servers.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg + "\n\t(skipped: set CI=true or REGSHIFT_REQUIRE_SERVERS=1 to make this a failure)")
	return ""
}
