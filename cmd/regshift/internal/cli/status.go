package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/coordinator/server"
)

// rolloutStatus prints one rollout, or every rollout without -id; with
// -watch it redraws until the rollout ends or ctx does (Ctrl-C).
func (c *CLI) rolloutStatus(ctx context.Context, args []string) error {
	fs := c.flags("rollout status", "rollout status [-id ROLLOUT] [-api http://127.0.0.1:7080] [-watch] [-interval 1s]")
	id := fs.String("id", "", "the rollout (default: list every rollout)")
	api := fs.String("api", defaultAPI, "the coordinator's HTTP API (any replica)")
	watch := fs.Bool("watch", false, "redraw every -interval until the rollout ends or Ctrl-C")
	interval := fs.Duration("interval", time.Second, "how often -watch redraws")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("%w: -interval %s must be positive", ErrUsage, *interval)
	}
	cl := newAPIClient(*api)
	draw := func(ctx context.Context, w io.Writer) (bool, error) {
		var list []server.Summary
		if err := cl.get(ctx, "/v1/rollouts", &list); err != nil {
			return false, err
		}
		renderSummaries(w, list)
		return false, nil
	}
	if *id != "" {
		draw = func(ctx context.Context, w io.Writer) (bool, error) {
			var r coordinator.Rollout
			if err := cl.get(ctx, "/v1/rollouts/"+url.PathEscape(*id), &r); err != nil {
				return false, err
			}
			renderRollout(w, &r)
			return r.Phase.Ended(), nil
		}
	}
	if !*watch {
		_, err := draw(ctx, c.Stdout)
		return err
	}
	return c.watch(ctx, *interval, draw)
}

// nodes prints every node of every rollout the coordinator holds.
func (c *CLI) nodes(ctx context.Context, args []string) error {
	fs := c.flags("nodes", "nodes [-api http://127.0.0.1:7080]")
	api := fs.String("api", defaultAPI, "the coordinator's HTTP API (any replica)")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	var nodes []server.NodeView
	if err := newAPIClient(*api).get(ctx, "/v1/nodes", &nodes); err != nil {
		return err
	}
	renderNodes(c.Stdout, nodes)
	return nil
}

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// watch draws every interval, clearing the screen first, until draw says
// the rollout ended or ctx ends. An error (the coordinator restarting, a
// replica taking over) is shown and the watch goes on.
func (c *CLI) watch(ctx context.Context, interval time.Duration, draw func(context.Context, io.Writer) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var buf bytes.Buffer
		ended, err := draw(ctx, &buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(&buf, "error: %v (retrying every %s)\n", err, interval)
		}
		fmt.Fprintf(c.Stdout, "%severy %s, Ctrl-C to stop\n\n%s", clearScreen, interval, buf.Bytes())
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

const defaultAPI = "http://127.0.0.1:7080"

// apiClient reads the coordinator's HTTP API.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 10 * time.Second}}
}

// get decodes the JSON answer of GET path into v; an answer other than 200
// is an error with the API's own message.
func (a *apiClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("coordinator API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		return fmt.Errorf("GET %s%s: %s: %s", a.base, path, resp.Status, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s%s: %w", a.base, path, err)
	}
	return nil
}
