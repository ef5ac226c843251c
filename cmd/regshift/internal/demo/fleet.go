package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regshift/regshift/nodeagent/client"
)

// provider is a demo app on a provider host: it answers HTTP with its name
// on /, and whether it is ready on /health (its agent's check).
type provider struct {
	name      string
	port      int
	srv       *http.Server
	unhealthy atomic.Bool // /health answers 503
}

func startProvider(name string) (*provider, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{name: name, port: l.Addr().(*net.TCPAddr).Port}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s", name)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if p.unhealthy.Load() {
			http.Error(w, "DOWN", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "UP")
	})
	p.srv = &http.Server{ReadHeaderTimeout: time.Second, Handler: mux}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// healthURL is the app's health endpoint, for its agent's check.
func (p *provider) healthURL() string { return fmt.Sprintf("http://127.0.0.1:%d/health", p.port) }

// failHealth makes /health answer 503 from now on while / keeps answering:
// the app says it is not ready, and the calls it gets still work.
func (p *provider) failHealth() { p.unhealthy.Store(true) }

func (p *provider) stop() { _ = p.srv.Close() }

// caller is a demo app on a consumer host: at a steady rate it resolves the
// service through its agent's local API and calls one of the endpoints.
type caller struct {
	node       string
	api        *client.Client
	service    string
	ok, failed atomic.Int64
	lastErr    atomic.Value // string
	viaMu      sync.Mutex
	via        map[string]int64 // interface -> calls resolved through it
	cancel     context.CancelFunc
	done       chan struct{}
	every      time.Duration
	httpc      *http.Client
	rr         int
}

func startCaller(node string, api *client.Client, service string, every time.Duration) *caller {
	ctx, cancel := context.WithCancel(context.Background())
	c := &caller{node: node, api: api, service: service, cancel: cancel, done: make(chan struct{}), every: every,
		via: map[string]int64{}, httpc: &http.Client{Timeout: 2 * time.Second}}
	go c.run(ctx)
	return c
}

func (c *caller) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.call(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.failed.Add(1)
			c.lastErr.Store(err.Error())
		} else {
			c.ok.Add(1)
		}
	}
}

func (c *caller) call(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := c.api.Resolve(ctx, c.service)
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	if len(res.Endpoints) == 0 {
		return fmt.Errorf("resolve %s via %s: no endpoints", c.service, res.Via)
	}
	c.rr++
	ep := res.Endpoints[c.rr%len(res.Endpoints)]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", ep.Address, ep.Port), nil)
	resp, err := c.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", ep.ID, resp.Status)
	}
	c.viaMu.Lock()
	c.via[res.Via]++
	c.viaMu.Unlock()
	return nil
}

func (c *caller) stop() {
	c.cancel()
	<-c.done
}
