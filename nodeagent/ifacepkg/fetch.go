package ifacepkg

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
)

// Fetch reads the package at rawURL (file, http or https), refuses more than
// maxBytes, and checks its sha256 against digest before returning it.
// Network and server errors wrap ErrFetch (retriable); a wrong digest wraps
// ErrDigestMismatch (not retriable: the command or the server is wrong).
func Fetch(ctx context.Context, client *http.Client, rawURL, digest string, maxBytes int64) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: package URL %q: %w", ErrFetch, rawURL, err)
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFetch, err)
		}
		body = f
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFetch, err)
		}
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFetch, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: GET %s: %s", ErrFetch, rawURL, resp.Status)
		}
		body = resp.Body
	default:
		return nil, fmt.Errorf("%w: package URL %q: scheme must be file, http or https", ErrFetch, rawURL)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrFetch, rawURL, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, rawURL, maxBytes)
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("%w: %s has %s, the command says %s", ErrDigestMismatch, rawURL, got, digest)
	}
	return b, nil
}
