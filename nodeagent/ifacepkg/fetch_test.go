package ifacepkg

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testFetchConfig is a config with short timeouts, file URLs under root.
func testFetchConfig(root string, max int64) FetchConfig {
	return FetchConfig{ConnectTimeout: time.Second, HeaderTimeout: time.Second, Timeout: 2 * time.Second,
		MaxBytes: max, MaxRedirects: 3, FileRoot: root}
}

// fetchWithin fetches and fails the test when Fetch takes longer than
// within: an unbounded fetch blocked the agent's command loop.
func fetchWithin(t *testing.T, f *Fetcher, url, digest string, within time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(context.Background(), url, digest)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("fetch of %s still running after %s", url, within)
		return nil
	}
}

// TestFetchTimeouts: a server that never answers, one that sends its
// headers and then a byte a second, and one that declares a huge body and
// stalls are all given up within the configured bounds.
func TestFetchTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent": // never sends headers
		case "/trickle": // a byte a second, forever
			w.WriteHeader(http.StatusOK)
			for {
				if _, err := w.Write([]byte{'x'}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(time.Second):
				case <-release:
					return
				}
			}
		case "/huge": // declares 1 GiB, sends a little, stalls
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("abc"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	cfg := testFetchConfig("", 1<<20)
	cfg.HeaderTimeout, cfg.Timeout = 300*time.Millisecond, 1500*time.Millisecond
	f := NewFetcher(cfg, nil)
	digest := "sha256:" + strings.Repeat("0", 64)
	for _, tt := range []struct {
		path   string
		within time.Duration
		want   error
	}{
		{"/silent", time.Second, ErrFetch},      // the header timeout
		{"/trickle", 3 * time.Second, ErrFetch}, // the total timeout
		{"/huge", 500 * time.Millisecond, ErrTooLarge},
	} {
		t.Run(tt.path, func(t *testing.T) {
			start := time.Now()
			err := fetchWithin(t, f, srv.URL+tt.path, digest, tt.within)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Logf("%s: %v after %s", tt.path, err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestFetchConnectTimeout: a peer that never completes the handshake (a
// listener whose backlog is full does not answer the SYN) is given up
// after the connect timeout; here a TLS server that never speaks stands
// in for it (the handshake is bounded by the same timeout).
func TestFetchConnectTimeout(t *testing.T) {
	ln := httptest.NewUnstartedServer(nil).Listener // accepts, never answers
	defer ln.Close()
	cfg := testFetchConfig("", 1<<20)
	cfg.ConnectTimeout, cfg.HeaderTimeout, cfg.Timeout = 300*time.Millisecond, 5*time.Second, 5*time.Second
	err := fetchWithin(t, NewFetcher(cfg, nil), "https://"+ln.Addr().String()+"/pkg", "sha256:"+strings.Repeat("0", 64), 2*time.Second)
	if !errors.Is(err, ErrFetch) {
		t.Fatalf("got %v, want ErrFetch", err)
	}
}

// TestFetchRedirects: redirects are followed up to the limit, never from
// https to http.
func TestFetchRedirects(t *testing.T) {
	pkg, digest, err := Build(writeSource(t, goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pkg) }))
	defer plain.Close()
	var tlsURL string
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pkg":
			_, _ = w.Write(pkg)
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/pkg", http.StatusFound)
		default: // /hops/N redirects N more times, then to /pkg
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hops/"))
			next := tlsURL + "/pkg"
			if n > 0 {
				next = tlsURL + "/hops/" + strconv.Itoa(n-1)
			}
			http.Redirect(w, r, next, http.StatusFound)
		}
	}))
	defer secure.Close()
	tlsURL = secure.URL
	f := NewFetcher(testFetchConfig("", 1<<20), secure.Client().Transport) // MaxRedirects 3
	if _, err := f.Fetch(context.Background(), secure.URL+"/hops/2", digest); err != nil {
		t.Fatalf("three redirects: %v", err)
	}
	for _, path := range []string{"/to-http", "/hops/3"} {
		if _, err := f.Fetch(context.Background(), secure.URL+path, digest); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: got %v, want ErrRefused", path, err)
		}
	}
}

// TestFetchFileRoot: file URLs read only under the configured root, and
// none without one; a refusal reads nothing, so no digest of a local file
// reaches the ack.
func TestFetchFileRoot(t *testing.T) {
	pkg, digest, err := Build(writeSource(t, goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "consul.tgz"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	in := NewFetcher(testFetchConfig(root, 1<<20), nil)
	if _, err := in.Fetch(context.Background(), "file://"+filepath.Join(root, "consul.tgz"), digest); err != nil {
		t.Fatalf("under the root: %v", err)
	}
	for name, tt := range map[string]struct {
		f    *Fetcher
		url  string
		want error
	}{
		"no root":       {NewFetcher(testFetchConfig("", 1<<20), nil), "file://" + filepath.Join(root, "consul.tgz"), ErrRefused},
		"outside":       {in, "file://" + outside, ErrRefused},
		"dot-dot":       {in, "file://" + root + "/../" + filepath.Base(filepath.Dir(outside)) + "/secret", ErrRefused},
		"symlink out":   {in, "file://" + filepath.Join(root, "link"), ErrFetch},
		"host":          {in, "file://elsewhere" + filepath.Join(root, "consul.tgz"), ErrRefused},
		"/etc/hostname": {in, "file:///etc/hostname", ErrRefused},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tt.f.Fetch(context.Background(), tt.url, digest)
			if !errors.Is(err, tt.want) || strings.Contains(err.Error(), "sha256:") {
				t.Fatalf("got %v, want %v and no digest", err, tt.want)
			}
		})
	}
}
