package nodeagent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// maxCheckPath bounds the HTTP check path a probe takes from an instance's
// metadata; a longer one, or one with control characters, is ignored and
// the probe is a TCP connect.
const maxCheckPath = 256

// maxProbeBody is how much of an HTTP probe's response body is read before
// it is closed.
const maxProbeBody = 512

// prober probes the endpoints a consumer resolves; one per Host, used by
// one goroutine (the health loop) at a time.
type prober struct {
	cfg Probe
	// probe runs one probe within cfg.Timeout; tests wrap it to count or
	// steer the probes.
	probe  func(ctx context.Context, t target) outcome
	dialer *net.Dialer
	client *http.Client
	// about is the primary and fallback the counters speak of: a round
	// about another pair starts them again.
	about [2]string
	// next is the index in the services of the one the next round starts
	// with.
	next     int
	services map[string]*probeState // one per consumed service
}

// probeState is what the prober keeps of one consumed service.
type probeState struct {
	bad    int          // probed rounds in a row the service was bad in
	last   probeFailure // what the last bad round found
	cursor [3]int       // where each rotating sample starts, by pickKind
}

// probeRound is one round's findings.
type probeRound struct {
	// Primary and Fallback are, per service probed this round, what each
	// interface's endpoints did; failing ones first; at most
	// schema.MaxHealthProbes each.
	Primary, Fallback []schema.Probe
	// Failing names the services that have failed Failures rounds in a
	// row: unreachable through the primary and reachable through the
	// fallback.
	Failing []string
	// Detail, when Failing is not empty, says so for the primary
	// interface's health detail, naming each failing service and its
	// unreachable endpoints, within schema.MaxDetail: "consumer probe:
	// orders: 2 of 2 endpoints refuse here, 2 of 2 accept through
	// zookeeper: 127.0.0.1:1 orders-p1, 127.0.0.1:2 orders-p2".
	Detail string
}

// target is one probe: an endpoint, and the HTTP path to GET on it ("":
// a TCP connect).
type target struct {
	hostport string
	path     string
}

// outcome is what one probe found.
type outcome uint8

const (
	unprobed outcome = iota // not probed: beyond the budget or the round was cancelled
	accepted                // connected; the HTTP check, if any, answered 2xx or 3xx
	refused                 // no connection within the timeout
	rejected                // the HTTP check answered another status or broke off
)

// pickKind says why an endpoint is in a service's sample.
type pickKind uint8

const (
	primaryOnly   pickKind = iota // a primary endpoint whose address:port the fallback does not return
	primaryShared                 // a primary endpoint the fallback returns too
	fallbackRest                  // a fallback endpoint no primary pick probes
	fallbackFree                  // a fallback endpoint a primary pick probes already
)

func (k pickKind) primary() bool { return k <= primaryShared }

// pick is one endpoint of a service's sample.
type pick struct {
	kind pickKind
	inst registries.Instance
	at   int // its target's index in the round's targets
}

// servicePlan is one service's part of a round.
type servicePlan struct {
	name  string
	picks []pick
	// trimmed: the round's budget cut the sample, so only a bad finding
	// counts.
	trimmed bool
	// compared: the fallback answered for the service, so it can be
	// judged.
	compared bool
}

// probeFailure is what a bad round found of one service.
type probeFailure struct {
	service string
	// unreachable are "address:port id" of the primary endpoints the
	// fallback does not return that did not accept.
	unreachable []string
	rejected    bool // one of them answered its HTTP check with an error
	probed      int  // endpoints probed through the primary
	fbProbed    int  // endpoints probed through the fallback
	fbAccepted  int
}

func newProber(cfg Probe) *prober {
	def := DefaultConfig().Probe
	if cfg.PerService < 1 {
		cfg.PerService = def.PerService
	}
	cfg.PerService = min(cfg.PerService, schema.MaxProbed)
	if cfg.PerRound < 1 {
		cfg.PerRound = def.PerRound
	}
	if cfg.Failures < 1 {
		cfg.Failures = def.Failures
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = def.Concurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	p := &prober{cfg: cfg, dialer: &net.Dialer{}, services: map[string]*probeState{}}
	p.client = &http.Client{
		Transport: &http.Transport{
			DialContext:            p.dialer.DialContext,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.probe = p.check
	return p
}

// round probes, for each consumed service in services, the endpoints
// primary[svc] and fallback[svc] resolve. A service missing from primary
// (its resolve failed) is passed over and keeps its counter. fallback is
// nil when the consumer has no fallback: there is nothing to compare, so
// nothing is Failing.
func (p *prober) round(ctx context.Context, primaryName, fallbackName string, services []string, primary, fallback map[string][]registries.Instance) probeRound {
	if p.cfg.Disabled {
		return probeRound{}
	}
	p.forget(primaryName, fallbackName, services, fallback != nil)
	plans, targets := p.plan(services, primary, fallback)
	return p.judge(plans, p.run(ctx, targets), services, fallbackName)
}

// forget drops the state of services no longer consumed, and every counter
// when the interfaces compared are others than last round's or there is no
// fallback.
func (p *prober) forget(primaryName, fallbackName string, services []string, hasFallback bool) {
	if about := [2]string{primaryName, fallbackName}; about != p.about || !hasFallback {
		p.about = about
		for _, st := range p.services {
			st.bad, st.last = 0, probeFailure{}
		}
	}
	for name := range p.services {
		if !slices.Contains(services, name) {
			delete(p.services, name)
		}
	}
}

// plan chooses the round's probes: services in turn from where the last
// round stopped, each with its sample, while the distinct targets stay
// within PerRound. A service whose sample does not fit whole waits for the
// next round, unless it is the round's first: that one is trimmed to fit.
func (p *prober) plan(services []string, primary, fallback map[string][]registries.Instance) ([]servicePlan, []target) {
	var plans []servicePlan
	var targets []target
	index := map[target]int{}
	budget := p.cfg.PerRound
	n := len(services)
	start := p.next % max(n, 1)
	seen := map[string]bool{}
	for j := range n {
		i := (start + j) % n
		svc := services[i]
		set, ok := primary[svc]
		if !ok || seen[svc] {
			continue
		}
		seen[svc] = true
		fb, compared := fallback[svc]
		st := p.services[svc]
		if st == nil {
			st = &probeState{}
			p.services[svc] = st
		}
		picks := p.sample(st, set, fb)
		fresh, cut := map[target]bool{}, len(picks)
		for x, pk := range picks {
			t := targetOf(pk.inst)
			if _, ok := index[t]; ok || fresh[t] {
				continue
			}
			if len(fresh) == budget {
				cut = x
				break
			}
			fresh[t] = true
		}
		if cut < len(picks) && len(plans) > 0 {
			p.next = i
			break
		}
		sp := servicePlan{name: svc, picks: picks[:cut], trimmed: cut < len(picks), compared: compared}
		for x := range sp.picks {
			t := targetOf(sp.picks[x].inst)
			at, ok := index[t]
			if !ok {
				at = len(targets)
				index[t] = at
				targets = append(targets, t)
			}
			sp.picks[x].at = at
			if k := sp.picks[x].kind; k != fallbackFree {
				st.cursor[k]++
			}
		}
		budget -= len(fresh)
		plans = append(plans, sp)
		p.next = (i + 1) % n
	}
	return plans, targets
}

// sample chooses at most PerService endpoints of one service on each
// interface: on the primary first those whose address:port the fallback
// does not return (only they can make the service bad), then the others;
// on the fallback first those the primary picks probe already, then
// others; each group rotating from its cursor. The picks alternate between
// the interfaces, so a trimmed sample still holds both.
func (p *prober) sample(st *probeState, prim, fb []registries.Instance) []pick {
	k := p.cfg.PerService
	onFallback := map[string]bool{}
	for _, f := range fb {
		onFallback[endpoint(f)] = true
	}
	var only, shared []registries.Instance
	for _, in := range sortedEndpoints(prim) {
		if onFallback[endpoint(in)] {
			shared = append(shared, in)
		} else {
			only = append(only, in)
		}
	}
	only = rotate(only, st.cursor[primaryOnly], k)
	shared = rotate(shared, st.cursor[primaryShared], k-len(only))
	var ps, fs []pick
	probed := map[target]bool{}
	for _, in := range only {
		ps = append(ps, pick{kind: primaryOnly, inst: in})
	}
	for _, in := range shared {
		ps = append(ps, pick{kind: primaryShared, inst: in})
		probed[targetOf(in)] = true
	}
	var rest []registries.Instance
	for _, in := range sortedEndpoints(fb) {
		switch {
		case !probed[targetOf(in)]:
			rest = append(rest, in)
		case len(fs) < k:
			fs = append(fs, pick{kind: fallbackFree, inst: in})
		}
	}
	for _, in := range rotate(rest, st.cursor[fallbackRest], k-len(fs)) {
		fs = append(fs, pick{kind: fallbackRest, inst: in})
	}
	picks := make([]pick, 0, len(ps)+len(fs))
	for i := range max(len(ps), len(fs)) {
		if i < len(ps) {
			picks = append(picks, ps[i])
		}
		if i < len(fs) {
			picks = append(picks, fs[i])
		}
	}
	return picks
}

// run probes the targets, Concurrency at once, and returns their outcomes
// by index. Once ctx is done no probe starts and those cut short are
// unprobed.
func (p *prober) run(ctx context.Context, targets []target) []outcome {
	out := make([]outcome, len(targets))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			o := p.probe(ctx, t)
			if o != accepted && ctx.Err() != nil {
				o = unprobed
			}
			out[i] = o
		})
	}
	wg.Wait()
	p.client.CloseIdleConnections()
	return out
}

// check is the real probe: a TCP connect, or an HTTP GET of the path
// answering 2xx or 3xx (redirects are not followed), within cfg.Timeout.
func (p *prober) check(ctx context.Context, t target) outcome {
	host, port, err := net.SplitHostPort(t.hostport)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return refused // no endpoint to dial: an empty address would dial this host
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if t.path == "" {
		c, err := p.dialer.DialContext(ctx, "tcp", t.hostport)
		if err != nil {
			return refused
		}
		_ = c.Close()
		return accepted
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.hostport+t.path, nil)
	if err != nil || req.URL.Host != t.hostport {
		return rejected // an address that is no host: never send the GET elsewhere
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
			return refused
		}
		return rejected
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.CopyN(io.Discard, resp.Body, maxProbeBody)
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return rejected
	}
	return accepted
}

// judge counts the outcomes per service and interface, moves the services'
// counters and says which services are failing.
func (p *prober) judge(plans []servicePlan, out []outcome, services []string, fallbackName string) probeRound {
	var r probeRound
	for _, sp := range plans {
		prim, fb, f, complete := tally(sp, out)
		r.Primary = append(r.Primary, prim)
		if sp.compared {
			r.Fallback = append(r.Fallback, fb)
		}
		st := p.services[sp.name]
		switch {
		case sp.compared && len(f.unreachable) > 0 && f.fbAccepted > 0:
			st.bad++
			st.last = f
		case sp.compared && complete && !sp.trimmed:
			st.bad, st.last = 0, probeFailure{}
		}
	}
	var failures []probeFailure
	for _, svc := range services {
		if st := p.services[svc]; st != nil && st.bad >= p.cfg.Failures && !slices.Contains(r.Failing, svc) {
			r.Failing = append(r.Failing, svc)
			failures = append(failures, st.last)
		}
	}
	r.Primary = failingFirst(r.Primary, r.Failing)
	r.Fallback = failingFirst(r.Fallback, r.Failing)
	if len(failures) > 0 {
		r.Detail = failingDetail(fallbackName, failures)
	}
	return r
}

// tally counts one service's probes on each interface; complete is false
// when one of its targets was not probed.
func tally(sp servicePlan, out []outcome) (prim, fb schema.Probe, f probeFailure, complete bool) {
	prim.Service, fb.Service, f.service = sp.name, sp.name, sp.name
	var down [2][2][]string // by interface (primary, fallback) and outcome (refused, rejected)
	complete = true
	for _, pk := range sp.picks {
		o := out[pk.at]
		if o == unprobed {
			complete = false
			continue
		}
		e, side := &prim, 0
		if !pk.kind.primary() {
			e, side = &fb, 1
		}
		e.Probed++
		if o == accepted {
			e.Reachable++
			continue
		}
		at, why := endpoint(pk.inst), 0
		if o == rejected {
			why = 1
		}
		down[side][why] = append(down[side][why], at+" ("+pk.inst.ID+")")
		if pk.kind == primaryOnly {
			f.unreachable = append(f.unreachable, at+" "+pk.inst.ID)
			f.rejected = f.rejected || o == rejected
		}
	}
	prim.Detail, fb.Detail = downDetail(down[0]), downDetail(down[1])
	f.probed, f.fbProbed, f.fbAccepted = prim.Probed, fb.Probed, fb.Reachable
	return prim, fb, f, complete
}

// downDetail lists an interface's endpoints that did not accept:
// "refused: 127.0.0.1:1 (p1), …; check failed: …".
func downDetail(down [2][]string) string {
	var ls []listing
	if len(down[0]) > 0 {
		ls = append(ls, listing{label: "refused", items: down[0]})
	}
	if len(down[1]) > 0 {
		ls = append(ls, listing{label: "check failed", items: down[1]})
	}
	if len(ls) == 0 {
		return ""
	}
	return detailOf(ls...)
}

// failingFirst orders probes failing services first, then those with
// endpoints that did not accept, and keeps schema.MaxHealthProbes.
func failingFirst(ps []schema.Probe, failing []string) []schema.Probe {
	rank := func(p schema.Probe) int {
		switch {
		case slices.Contains(failing, p.Service):
			return 0
		case p.Reachable < p.Probed:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(ps, func(a, b schema.Probe) int { return cmp.Compare(rank(a), rank(b)) })
	return ps[:min(len(ps), schema.MaxHealthProbes)]
}

// failingDetail says which services fail and why, within schema.MaxDetail:
// "consumer probe: orders: 2 of 2 endpoints resolved here refuse
// (127.0.0.1:1 orders-p1, 127.0.0.1:2 orders-p2); through zookeeper 2 of 2
// accept; …", each service's endpoints within its share of the room and
// "… and N more" for services that do not fit.
func failingDetail(fallbackName string, failures []probeFailure) string {
	const prefix = "consumer probe: "
	room := schema.MaxDetail - len(prefix)
	share := room / len(failures)
	part := func(i int) string {
		f := failures[i]
		verb := "refuse"
		if f.rejected {
			verb = "fail"
		}
		// The counts first and the endpoints last: a reason cut short (the
		// coordinator keeps 160 characters of a node's) still says what
		// failed, where, and against what.
		head := fmt.Sprintf("%s: %d of %d endpoints %s here, %d of %d accept through %s", f.service, len(f.unreachable), f.probed, verb,
			f.fbAccepted, f.fbProbed, fallbackName)
		if list := share - len(head) - len(": ; "); list >= len("… and 64 more") {
			head += ": " + schema.List(f.unreachable, list)
		}
		return head
	}
	return prefix + schema.ListFunc(len(failures), part, "; ", room)
}

// endpoint is an instance's address:port.
func endpoint(in registries.Instance) string {
	return net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
}

// targetOf is how an instance is probed.
func targetOf(in registries.Instance) target {
	return target{hostport: endpoint(in), path: probePath(in.Metadata[registries.MetaCheckPath])}
}

// probePath returns p when it is a usable HTTP check path: it starts with
// "/", is at most maxCheckPath bytes, has no control characters and names
// no other host. Otherwise "": the probe is a TCP connect.
func probePath(p string) string {
	if p == "" || p[0] != '/' || len(p) > maxCheckPath {
		return ""
	}
	for i := range len(p) {
		if p[i] < 0x20 || p[i] == 0x7f {
			return ""
		}
	}
	if u, err := url.Parse("http://h" + p); err != nil || u.Host != "h" {
		return ""
	}
	return p
}

// sortedEndpoints is a copy of set ordered by address:port and id, so
// rotation is stable across rounds.
func sortedEndpoints(set []registries.Instance) []registries.Instance {
	out := slices.Clone(set)
	slices.SortFunc(out, func(a, b registries.Instance) int {
		return cmp.Or(cmp.Compare(endpoint(a), endpoint(b)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// rotate returns at most n of set, starting at off (modulo its length).
func rotate(set []registries.Instance, off, n int) []registries.Instance {
	if n <= 0 || len(set) == 0 {
		return nil
	}
	off %= len(set)
	return append(slices.Clone(set[off:]), set[:off]...)[:min(n, len(set))]
}
