package browser

import (
	"net/http"
	"net/http/httptest"
	"sync"
)

// maxBlocked bounds the requests a fence remembers.
const maxBlocked = 100

// fence is the browser's only proxy: a server on 127.0.0.1 that refuses
// every request it is sent and remembers where it was going. Chromium
// sends loopback requests directly (they bypass any proxy) and everything
// else here, so no request leaves the machine and a page that reaches for
// the outside (a CDN script, a web font) shows up in Blocked.
type fence struct {
	srv *httptest.Server

	mu      sync.Mutex
	blocked []string
	dropped int
}

func newFence() *fence {
	f := &fence{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.refuse)) // on 127.0.0.1
	return f
}

// proxy is the --proxy-server value.
func (f *fence) proxy() string { return "http://" + f.srv.Listener.Addr().String() }

// refuse answers 403 to a proxied request (absolute URL) or a CONNECT
// (host:port of an https request).
func (f *fence) refuse(w http.ResponseWriter, r *http.Request) {
	target := r.URL.String()
	if r.Method == http.MethodConnect {
		target = "https://" + r.Host
	}
	f.mu.Lock()
	if len(f.blocked) < maxBlocked {
		f.blocked = append(f.blocked, r.Method+" "+bound(target, 200))
	} else {
		f.dropped++
	}
	f.mu.Unlock()
	http.Error(w, "regshift browser test: no network beyond 127.0.0.1", http.StatusForbidden)
}

// list returns the refused requests, oldest first, and how many more were
// not kept.
func (f *fence) list() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.blocked...), f.dropped
}

func (f *fence) close() { f.srv.Close() }

// bound cuts s to at most n bytes, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
