package eureka_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// proxy stands between a client and the real server: it counts the
// fetches the client makes and can fail registrations or drop a delta's
// changes, as a lossy network or a server in trouble would.
type proxy struct {
	addr string

	mu         sync.Mutex
	full       int  // GET /eureka/apps
	deltas     int  // GET /eureka/apps/delta
	failWrites bool // POST /eureka/apps/... answers 503 without reaching the server
	// dropFrom, when set, drops the changes (keeping the hash code) of the
	// first delta that holds this app's instance with this instanceId.
	dropFrom [2]string
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{}
	tr := &http.Transport{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: target})
			r.Out.Header.Del("Accept-Encoding") // bodies the proxy can read
		},
		Transport:      tr,
		ModifyResponse: p.modify,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fail := p.failWrites && r.Method == http.MethodPost
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/eureka/apps":
			p.full++
		case r.Method == http.MethodGet && r.URL.Path == "/eureka/apps/delta":
			p.deltas++
		}
		p.mu.Unlock()
		if fail {
			http.Error(w, "proxy: registrations fail", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// modify drops the changes of a delta when asked to (dropFrom).
func (p *proxy) modify(resp *http.Response) error {
	p.mu.Lock()
	target := p.dropFrom
	p.mu.Unlock()
	if target == ([2]string{}) || resp.Request.URL.Path != "/eureka/apps/delta" || resp.StatusCode != http.StatusOK {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var delta struct {
		Applications struct {
			Apps []struct {
				Name      string `json:"name"`
				Instances []struct {
					InstanceID string `json:"instanceId"`
				} `json:"instance"`
			} `json:"application"`
		} `json:"applications"`
	}
	if err := json.Unmarshal(b, &delta); err != nil {
		return err
	}
	holds := false
	for _, a := range delta.Applications.Apps {
		for _, in := range a.Instances {
			holds = holds || (a.Name == target[0] && in.InstanceID == target[1])
		}
	}
	p.mu.Lock()
	drop := holds && p.dropFrom == target
	if drop {
		p.dropFrom = [2]string{}
	}
	p.mu.Unlock()
	if !drop {
		return nil
	}
	var body map[string]map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return err
	}
	body["applications"]["application"] = []any{}
	b, err = json.Marshal(body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return nil
}

func (p *proxy) set(f func(p *proxy)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// fetches returns the full and delta fetches so far.
func (p *proxy) fetches() (full, deltas int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.full, p.deltas
}
