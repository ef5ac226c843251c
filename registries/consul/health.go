package consul

import (
	"context"
	"errors"
	"log/slog"

	"github.com/hashicorp/consul/api"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/internal/owned"
)

// SetHealth implements registries.HealthSetter with the instance's TTL
// check: its status (critical leaves the instance out of every passing-only
// query, Resolve's and Watch's among them) and its output, cut to 1 KiB
// (owned.MaxOutput). From then on the keepalive refreshes the check in that
// status, and a re-registration registers it so.
//
// Consul removes an instance whose check has been critical for
// DeregisterCriticalAfter (its reaper runs about every 30s); the keepalive
// then registers it again, still critical, so an instance marked critical
// for long is removed and re-created about once a DeregisterCriticalAfter
// (logged at debug level). Passing-only readers see no change.
//
// When the agent cannot be reached SetHealth returns the retriable error and
// keeps the mark, which the keepalive applies once the agent answers.
func (c *Client) SetHealth(ctx context.Context, service, id string, passing bool, output string) error {
	if c.life.Closed() {
		return registries.ErrClosed
	}
	return c.owned.SetHealth(ctx, service, id, passing, output, c.write)
}

// write brings the agent's copy of e in line with it: it sets e's check to
// e's mark, and registers e again when the agent no longer knows the check.
// The client writes again while the entry changed meanwhile
// (owned.Set.Apply), so a keepalive that read the entry before a SetHealth
// never leaves its stale status behind.
func (c *Client) write(ctx context.Context, e owned.Entry) error {
	err := c.updateCheck(ctx, e)
	var se api.StatusError
	if err == nil || !errors.As(err, &se) || ctx.Err() != nil {
		return mapErr("update check", err)
	}
	if !c.owned.Current(e) {
		return nil // changed or deregistered meanwhile: Apply looks again
	}
	level := slog.LevelInfo
	if e.Health.Critical {
		level = slog.LevelDebug // reaped by Consul after DeregisterCriticalAfter: expected
	}
	in := e.Instance
	c.log.Log(ctx, level, "check lost by the agent; registering again",
		"service", in.Service, "id", in.ID, "status", se.Code, "critical", e.Health.Critical)
	return c.register(ctx, e)
}

// updateCheck writes e's mark as its check's status and output; the SDK's
// error as it is.
func (c *Client) updateCheck(ctx context.Context, e owned.Entry) error {
	return c.agent.UpdateTTLOpts(checkID(e.Instance.Service, e.Instance.ID),
		checkOutput(e.Health), checkStatus(e.Health), c.query(ctx))
}

func checkStatus(h owned.Health) string {
	if h.Critical {
		return api.HealthCritical
	}
	return api.HealthPassing
}

func checkOutput(h owned.Health) string {
	switch {
	case h.Output != "":
		return h.Output
	case h.Critical:
		return "marked critical through regshift"
	}
	return "kept alive by regshift"
}

// validKey checks an instance's service and id as Register does.
func validKey(service, id string) error {
	if err := registries.ValidateService(service); err != nil {
		return err
	}
	return registries.ValidateID(id)
}
