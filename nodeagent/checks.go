package nodeagent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// appCheck is the state of one service's check: the status the registries
// and the health report carry, and the results in a row that move it.
type appCheck struct {
	svc    Service
	status schema.HealthStatus // passing until FailuresBeforeCritical results fail in a row
	since  time.Time
	at     time.Time // since, on this host's own clock: what primaryChanged compares with
	detail string    // the last failure's output; kept while critical
	fails  int       // failed results in a row
	passes int       // passed results in a row
}

// checks holds the host's app checks. An instance starts passing: the
// agent registers it as its config says and withdraws it only on evidence.
type checks struct {
	mu sync.Mutex
	m  map[string]*appCheck // by instance id; only services with a check
}

func newChecks(services []Service, now time.Time) *checks {
	c := &checks{m: map[string]*appCheck{}}
	for _, s := range services {
		if s.Check.Kind() != "" {
			c.m[s.ID] = &appCheck{svc: s, status: schema.HealthPassing, since: now}
		}
	}
	return c
}

// status reports whether the instance's check is critical, and its output.
func (c *checks) status(id string) (critical bool, output string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ac, ok := c.m[id]
	if !ok || ac.status != schema.HealthCritical {
		return false, ""
	}
	return true, ac.detail
}

// record folds one result into the instance's check and reports whether
// its status changed.
func (c *checks) record(id string, err error, now time.Time) (changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ac := c.m[id]
	if err != nil {
		ac.fails, ac.passes = ac.fails+1, 0
		if ac.status == schema.HealthCritical {
			ac.detail = schema.Truncate(err.Error(), schema.MaxDetail)
		}
		if ac.status == schema.HealthPassing && ac.fails >= ac.svc.Check.FailuresBeforeCritical {
			ac.status, ac.since, ac.at, ac.detail = schema.HealthCritical, now, time.Now(), schema.Truncate(err.Error(), schema.MaxDetail)
			return true
		}
		return false
	}
	ac.passes, ac.fails = ac.passes+1, 0
	if ac.status == schema.HealthCritical && ac.passes >= ac.svc.Check.SuccessBeforePassing {
		ac.status, ac.since, ac.at, ac.detail = schema.HealthPassing, now, time.Now(), ""
		return true
	}
	return false
}

// report is the checks as a health report carries them: failing first,
// then by service and instance, at most schema.MaxHealthChecks.
func (c *checks) report() []schema.AppCheck {
	c.mu.Lock()
	out := make([]schema.AppCheck, 0, len(c.m))
	for id, ac := range c.m {
		out = append(out, schema.AppCheck{Service: ac.svc.Name, Instance: id, Kind: ac.svc.Check.Kind(), Status: ac.status,
			Since: ac.since.UTC(), Detail: ac.detail})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b schema.AppCheck) int {
		if (a.Status == schema.HealthCritical) != (b.Status == schema.HealthCritical) {
			if a.Status == schema.HealthCritical {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Instance, b.Instance))
	})
	return out[:min(len(out), schema.MaxHealthChecks)]
}

// failing lists the critical checks as "instance (kind): output", sorted:
// those that turned critical at or after t, and those critical since
// before it.
func (c *checks) failing(t time.Time) (since, before []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ac := range c.m {
		if ac.status != schema.HealthCritical {
			continue
		}
		line := fmt.Sprintf("%s (%s): %s", id, ac.svc.Check.Kind(), ac.detail)
		if ac.at.Before(t) {
			before = append(before, line)
		} else {
			since = append(since, line)
		}
	}
	slices.Sort(since)
	slices.Sort(before)
	return since, before
}

// critical counts the critical checks.
func (c *checks) critical() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ac := range c.m {
		if ac.status == schema.HealthCritical {
			n++
		}
	}
	return n
}

// maxCheckRead is how much of an HTTP check's response is read for Body.
const maxCheckRead = 64 << 10

// runCheck runs one check of svc within its timeout: nil when it passes.
func runCheck(ctx context.Context, client *http.Client, c Check) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if c.TCP != "" {
		var d net.Dialer
		for addr := range strings.SplitSeq(c.TCP, ",") {
			conn, err := d.DialContext(ctx, "tcp", strings.TrimSpace(addr))
			if err != nil {
				return fmt.Errorf("tcp %s: %w", addr, errors.Unwrap(err))
			}
			_ = conn.Close()
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "regshift-agent/"+Version)
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("GET %s: %w", c.HTTP, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckRead))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s: %s", c.HTTP, resp.Status)
	}
	if c.Body != "" {
		if err != nil {
			return fmt.Errorf("GET %s: reading the body: %w", c.HTTP, err)
		}
		if !bytes.Contains(body, []byte(c.Body)) {
			return fmt.Errorf("GET %s: %s, but the body lacks %q", c.HTTP, resp.Status, c.Body)
		}
	}
	return nil
}

// checkClient is the HTTP client of app checks: a 3xx is an answer, not a
// redirect to follow; no connection is kept between checks.
func checkClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// runChecks runs every service's check at its interval until ctx ends,
// the first at once. A status change is applied to the registries through
// apply and then announced with changed.
func (c *checks) run(ctx context.Context, now func() time.Time, apply func(ctx context.Context, in Service, passing bool, output string), changed func()) {
	client := checkClient()
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	c.mu.Lock()
	for id, ac := range c.m {
		svc := ac.svc
		wg.Go(func() {
			t := time.NewTicker(svc.Check.Interval)
			defer t.Stop()
			for {
				err := runCheck(ctx, client, svc.Check)
				if ctx.Err() != nil {
					return
				}
				if c.record(id, err, now()) {
					output := "passing"
					if err != nil {
						output = err.Error()
					}
					apply(ctx, svc, err == nil, output)
					changed()
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	c.mu.Unlock()
	wg.Wait()
}

// setHealth carries an instance's check status into every interface the
// host registers in (s's active ones): a registries.HealthSetter marks it,
// any other registry has it withdrawn while failing and registered again
// when passing. Failures are logged and counted; the next status change or
// the reconcile at start tries again.
func (h *Host) setHealth(ctx context.Context, s State, svc Service, passing bool, output string) {
	in, ok := h.instance(svc.ID)
	if !ok {
		return
	}
	for _, name := range s.Active() {
		c, open := h.Client(name)
		if !open {
			continue
		}
		var err error
		switch hs, ok := c.(registries.HealthSetter); {
		case ok:
			err = hs.SetHealth(ctx, in.Service, in.ID, passing, output)
		case passing:
			err = c.Register(ctx, in)
		default:
			if err = c.Deregister(ctx, in.Service, in.ID); errors.Is(err, registries.ErrNotFound) {
				err = nil
			}
		}
		if err != nil {
			h.countError(name)
			h.log.Warn("carrying an app check's status into a registry", "interface", name, "service", in.Service, "id", in.ID, "passing", passing, "err", err)
		} else {
			h.log.Info("app check status carried into the registry", "interface", name, "service", in.Service, "id", in.ID, "passing", passing, "output", output)
		}
	}
}

// instance returns the registration of the service with this instance id.
func (h *Host) instance(id string) (registries.Instance, bool) {
	for _, in := range h.Instances() {
		if in.ID == id {
			return in, true
		}
	}
	return registries.Instance{}, false
}
