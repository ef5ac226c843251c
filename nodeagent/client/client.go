// Package client is the Go client of the node agent's local API, for the
// apps on a host: resolve a service (at once, or long-poll until it changes),
// read the host's registrations and the agent's status. The answers are the
// agentapi types; the client imports neither the agent nor its Kafka and
// registry clients.
//
//	c, _ := client.New("unix:/run/regshift/agent.sock")
//	res, _ := c.Resolve(ctx, "payments")
//	for {
//		res, err = c.Watch(ctx, "payments", res.Index, 30*time.Second)
//		...
//	}
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regshift/regshift/nodeagent/agentapi"
)

// ErrNotConsumed is returned for a service the host does not consume.
var ErrNotConsumed = errors.New("service not consumed by this host")

// Client talks to one agent.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the agent listening at addr: host:port or
// unix:/path.
func New(addr string) (*Client, error) {
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		return &Client{base: "http://agent", http: &http.Client{Transport: tr}}, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("agent address %q: want host:port or unix:/path", addr)
	}
	return &Client{base: "http://" + addr, http: &http.Client{}}, nil
}

// Resolve returns the service's current endpoints.
func (c *Client) Resolve(ctx context.Context, service string) (agentapi.Resolution, error) {
	var r agentapi.Resolution
	return r, c.get(ctx, "/v1/resolve/"+url.PathEscape(service), &r)
}

// Watch blocks until the service's answer has an index above after, or wait
// passes, and returns the answer then.
func (c *Client) Watch(ctx context.Context, service string, after uint64, wait time.Duration) (agentapi.Resolution, error) {
	var r agentapi.Resolution
	q := url.Values{"index": {strconv.FormatUint(after, 10)}, "wait": {wait.String()}}
	return r, c.get(ctx, "/v1/resolve/"+url.PathEscape(service)+"?"+q.Encode(), &r)
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (agentapi.Status, error) {
	var s agentapi.Status
	return s, c.get(ctx, "/v1/status", &s)
}

// Registrations returns this host's registrations as read back per interface.
func (c *Client) Registrations(ctx context.Context) ([]agentapi.Registration, error) {
	var regs []agentapi.Registration
	return regs, c.get(ctx, "/v1/registrations", &regs)
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e agentapi.Error
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusNotFound && strings.Contains(path, "/v1/resolve/") {
			return fmt.Errorf("%w: %s", ErrNotConsumed, e.Message)
		}
		return fmt.Errorf("agent %s: %s: %s", path, resp.Status, e.Message)
	}
	return json.Unmarshal(body, into)
}
