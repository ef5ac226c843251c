package ifacepkg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ErrRefused wraps a package URL the agent will not fetch: a scheme other
// than file, http or https, a file outside FetchConfig.FileRoot (or any
// file when no root is set), a redirect from https to http or past
// MaxRedirects. Not retriable: the command or the server is wrong.
var ErrRefused = errors.New("package URL refused")

// FetchConfig bounds a package download. Every field must be set (the
// agent config fills them from its defaults).
type FetchConfig struct {
	// ConnectTimeout bounds the TCP connect and the TLS handshake.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers once the
	// request is sent.
	HeaderTimeout time.Duration
	// Timeout bounds the whole fetch: connect, headers and body.
	Timeout time.Duration
	// MaxBytes is the largest package taken: a larger Content-Length is
	// refused before the body is read, and the body is cut off as soon as
	// it streams past MaxBytes.
	MaxBytes int64
	// MaxRedirects is how many redirects are followed (never from https to
	// http).
	MaxRedirects int
	// FileRoot is the one folder file:// URLs may name (an absolute path);
	// empty refuses every file:// URL.
	FileRoot string
}

// Fetcher downloads packages within its FetchConfig.
type Fetcher struct {
	cfg    FetchConfig
	client *http.Client
}

// NewFetcher returns a Fetcher. With a nil transport it dials with
// cfg's connect timeout and waits for headers at most cfg.HeaderTimeout;
// a given transport (a test server's, trusting its certificate) keeps its
// own dial settings. The total timeout and the redirect policy hold for
// both.
func NewFetcher(cfg FetchConfig, transport http.RoundTripper) *Fetcher {
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: cfg.ConnectTimeout}).DialContext
		t.TLSHandshakeTimeout = cfg.ConnectTimeout
		t.ResponseHeaderTimeout = cfg.HeaderTimeout
		transport = t
	}
	return &Fetcher{cfg: cfg, client: &http.Client{Transport: transport, Timeout: cfg.Timeout, CheckRedirect: checkRedirect(cfg.MaxRedirects)}}
}

// checkRedirect follows at most max redirects and none from https to
// another scheme: the digest protects the bytes, not what a plain-text hop
// reveals or lets an attacker stall.
func checkRedirect(max int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > max {
			return fmt.Errorf("%w: more than %d redirects", ErrRefused, max)
		}
		if req.URL.Scheme != "https" && slices.ContainsFunc(via, func(r *http.Request) bool { return r.URL.Scheme == "https" }) {
			return fmt.Errorf("%w: redirect from https to %s", ErrRefused, req.URL.Redacted())
		}
		return nil
	}
}

// Fetch reads the package at rawURL (file, http or https) within the
// config's limits and checks its sha256 against digest before returning
// it. A refused URL wraps ErrRefused and nothing is read; network and
// server errors, timeouts and a cancelled ctx wrap ErrFetch (retriable); a
// package over MaxBytes wraps ErrTooLarge; a wrong digest wraps
// ErrDigestMismatch.
func (f *Fetcher) Fetch(ctx context.Context, rawURL, digest string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: package URL %q: %w", ErrRefused, rawURL, err)
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "file":
		if body, err = f.open(u); err != nil {
			return nil, err
		}
	case "http", "https":
		if body, err = f.get(ctx, u); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: package URL %q: scheme must be file, http or https", ErrRefused, u.Redacted())
	}
	defer body.Close()
	b, err := io.ReadAll(http.MaxBytesReader(nil, body, f.cfg.MaxBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, u.Redacted(), f.cfg.MaxBytes)
	case err != nil:
		return nil, fmt.Errorf("%w: reading %s: %w", ErrFetch, u.Redacted(), causeOf(ctx, err))
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("%w: %s has %s, the command says %s", ErrDigestMismatch, u.Redacted(), got, digest)
	}
	return b, nil
}

// get sends the request and checks status and declared length.
func (f *Fetcher) get(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	resp, err := f.client.Do(req)
	switch {
	case errors.Is(err, ErrRefused):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrFetch, causeOf(ctx, err))
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: GET %s: %s", ErrFetch, u.Redacted(), resp.Status)
	case resp.ContentLength > f.cfg.MaxBytes:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s declares %d bytes, over %d", ErrTooLarge, u.Redacted(), resp.ContentLength, f.cfg.MaxBytes)
	}
	return resp.Body, nil
}

// open opens a file:// URL's file inside FileRoot. os.Root also refuses a
// symbolic link or ".." that leads out of the root.
func (f *Fetcher) open(u *url.URL) (io.ReadCloser, error) {
	if f.cfg.FileRoot == "" {
		return nil, fmt.Errorf("%w: %s: file URLs are off (the agent config sets no fetch.fileRoot)", ErrRefused, u.Redacted())
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: %s: a file URL names no host", ErrRefused, u.Redacted())
	}
	rel, err := filepath.Rel(f.cfg.FileRoot, filepath.Clean(u.Path))
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%w: %s is outside fetch.fileRoot %s", ErrRefused, u.Redacted(), f.cfg.FileRoot)
	}
	root, err := os.OpenRoot(f.cfg.FileRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch.fileRoot: %w", ErrFetch, err)
	}
	defer root.Close()
	file, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	return file, nil
}

// causeOf adds why ctx ended (a switch-back waiting, say) when err does
// not already say it.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}
