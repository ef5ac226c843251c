package eureka

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/regshift/regshift/registries"
)

// api makes the REST calls of Eureka's API this package uses (the
// "Eureka REST operations" of Netflix's wiki), in JSON.
type api struct {
	base      string // scheme://host:port/path
	client    *http.Client
	transport *http.Transport
	user      string
	password  string
}

// maxBody bounds what a response body is read to (a full fetch of a large
// registry is a few MiB).
const maxBody = 64 << 20

func newAPI(cfg Config) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // renewals run on several workers
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	return &api{
		base:      cfg.Scheme + "://" + cfg.Address + cfg.Path,
		client:    &http.Client{Transport: tr},
		transport: tr,
		user:      cfg.Username, password: cfg.Password,
	}
}

// errDeltaDisabled: the server answers delta fetches with 403 (its
// disableDelta setting, or reads refused while it syncs from its peers).
var errDeltaDisabled = errors.New("eureka: delta fetches refused (403)")

// register writes the instance (POST /apps/{app}).
func (a *api) register(ctx context.Context, info instanceInfo) error {
	body, err := json.Marshal(instanceBody{Instance: info})
	if err != nil {
		return fmt.Errorf("eureka register: %w", err)
	}
	return a.do(ctx, "register", http.MethodPost, a.instancePath(info.App, ""), nil, body, nil)
}

// renew renews the lease of app/id (PUT /apps/{app}/{id}), telling the
// server the lastDirtyTimestamp of the registration the client holds: a
// server whose copy is older answers 404 as for a lease it does not know,
// and the client registers again.
func (a *api) renew(ctx context.Context, app, id string, dirty int64) error {
	q := url.Values{"lastDirtyTimestamp": {strconv.FormatInt(dirty, 10)}}
	return a.do(ctx, "renew", http.MethodPut, a.instancePath(app, id), q, nil, nil)
}

// cancel removes app/id (DELETE /apps/{app}/{id}); ErrNotFound when the
// server holds no such instance.
func (a *api) cancel(ctx context.Context, app, id string) error {
	return a.do(ctx, "cancel", http.MethodDelete, a.instancePath(app, id), nil, nil, nil)
}

// app fetches one app's instances (GET /apps/{app}); none for an app the
// server does not know.
func (a *api) app(ctx context.Context, app string) ([]instanceInfo, error) {
	var out applicationBody
	err := a.do(ctx, "fetch app", http.MethodGet, a.instancePath(app, ""), nil, nil, &out)
	if errors.Is(err, registries.ErrNotFound) {
		return nil, nil
	}
	return out.Application.Instances, err
}

// apps fetches the whole registry (GET /apps).
func (a *api) apps(ctx context.Context) (applications, error) {
	var out applicationsBody
	err := a.do(ctx, "full fetch", http.MethodGet, "/apps", nil, nil, &out)
	return out.Applications, err
}

// delta fetches the registry's recent changes (GET /apps/delta) with the
// hash code of the whole registry as they left it; errDeltaDisabled when
// the server refuses deltas.
func (a *api) delta(ctx context.Context) (applications, error) {
	var out applicationsBody
	err := a.do(ctx, "delta fetch", http.MethodGet, "/apps/delta", nil, nil, &out)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusForbidden {
		return applications{}, errDeltaDisabled
	}
	return out.Applications, err
}

// ping reads the instances of a VIP address nobody registers (GET
// /vips/{vip}): the smallest read that goes through the server's registry
// and answers 200 with JSON whatever the registry holds.
func (a *api) ping(ctx context.Context) error {
	var out applicationsBody
	return a.do(ctx, "ping", http.MethodGet, "/vips/regshift.ping", nil, nil, &out)
}

func (a *api) instancePath(app, id string) string {
	p := "/apps/" + url.PathEscape(app)
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return p
}

// do sends one request and decodes a JSON answer into out (when not nil).
// Errors wrap the registries sentinels (see mapStatus); a failure to
// connect, a timeout or a cancelled context is ErrUnavailable.
func (a *api) do(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("eureka %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.password)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return fmt.Errorf("eureka %s: the server's certificate is not trusted (check TLS settings): %w", op, err)
		}
		return fmt.Errorf("eureka %s: %w: %w", op, registries.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // keep the connection
		return mapStatus(op, &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(msg))})
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("eureka %s: %w: %w", op, registries.ErrUnavailable, err)
		}
		return fmt.Errorf("eureka %s: the answer is not Eureka's JSON (is %s a Eureka server's API?): %w", op, a.base, err)
	}
	return nil
}

// statusError is a response with a status other than 2xx.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

// mapStatus turns a status into the registries sentinels: 404 not found,
// 400 invalid, 429 and 5xx unavailable; any other (401 and 403 of a
// secured server among them) a plain, non-retriable error.
func mapStatus(op string, se *statusError) error {
	switch {
	case se.code == http.StatusNotFound:
		return fmt.Errorf("eureka %s: %w: %w", op, registries.ErrNotFound, se)
	case se.code == http.StatusBadRequest:
		return fmt.Errorf("eureka %s: %w: %w", op, registries.ErrInvalid, se)
	case se.code == http.StatusTooManyRequests || se.code >= 500:
		return fmt.Errorf("eureka %s: %w: %w", op, registries.ErrUnavailable, se)
	}
	return fmt.Errorf("eureka %s: %w", op, se)
}
