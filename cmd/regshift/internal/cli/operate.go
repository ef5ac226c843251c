package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/regshift/regshift/coordinator/server"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// Request kinds the rollout commands publish, as the command line names them.
const (
	requestCreate   = "create"
	requestPause    = "pause"
	requestResume   = "resume"
	requestApprove  = "approve"
	requestAbort    = "abort"
	requestFinalize = "finalize"
)

// requestCommand is the command that publishes one kind of request.
func requestCommand(kind string) func(*CLI, context.Context, []string) error {
	return func(c *CLI, ctx context.Context, args []string) error { return c.request(ctx, kind, args) }
}

// requestOpts are the flags every request command takes.
type requestOpts struct {
	rollout, brokers, prefix, key, by, reason string
	timeout                                   time.Duration
}

// request parses the flags of "rollout <kind>", builds that request and
// publishes it to the requests topic, signed with -key or unsigned.
func (c *CLI) request(ctx context.Context, kind string, args []string) error {
	usage := "rollout " + kind + " -id ROLLOUT"
	switch kind {
	case requestCreate:
		usage = "rollout create -f plan.yaml -id ROLLOUT"
	case requestApprove:
		usage += " [-wave N]"
	}
	fs := c.flags("rollout "+kind, usage+" [-brokers 127.0.0.1:9092] [-prefix regshift.] [-key operator.key] [-by NAME] [-reason TEXT]")
	var o requestOpts
	fs.StringVar(&o.rollout, "id", "", "the rollout's id (required)")
	fs.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	fs.StringVar(&o.prefix, "prefix", "regshift.", "topic prefix: the request goes to <prefix>requests")
	fs.StringVar(&o.key, "key", "", "the operator's private key (<key id>.key from `regshift keys generate`); unsigned without it")
	fs.StringVar(&o.by, "by", "", "who asks, recorded with every decision it causes (default: the key id, or user@host)")
	fs.StringVar(&o.reason, "reason", "", "why, free text (up to 1024 characters)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up publishing after this long")
	var planFile string
	var wave int
	switch kind {
	case requestCreate:
		fs.StringVar(&planFile, "f", "", "the rollout plan (required; check it first with `regshift rollout preview`)")
	case requestApprove:
		fs.IntVar(&wave, "wave", 0, "the wave (1-based) whose gate to pass; refused unless that wave is waiting (0: any)")
	}
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	switch {
	case o.rollout == "":
		fs.Usage()
		return fmt.Errorf("%w: -id is required", ErrUsage)
	case kind == requestCreate && planFile == "":
		fs.Usage()
		return fmt.Errorf("%w: -f is required", ErrUsage)
	case wave < 0:
		return fmt.Errorf("%w: -wave %d: waves count from 1", ErrUsage, wave)
	}
	var signer *events.Signer
	if o.key != "" {
		var err error
		if signer, err = events.LoadSigner(o.key); err != nil {
			return fmt.Errorf("-key: %w", err)
		}
	}
	if o.by == "" {
		o.by = defaultRequester(signer)
	}
	h := schema.RequestHeader{RequestID: newRequestID(), RequestedAt: time.Now().UTC().Truncate(time.Second),
		RolloutID: o.rollout, RequestedBy: o.by, Reason: o.reason}
	req, err := buildRequest(kind, h, planFile, wave)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	topic, err := c.publishRequest(ctx, o, signer, req)
	if err != nil {
		return err
	}
	signed := "unsigned"
	if signer != nil {
		signed = "signed by key " + signer.KeyID
	}
	fmt.Fprintf(c.Stdout, "published %s\n  rollout:    %s\n  request id: %s\n  by:         %s\n  topic:      %s (%s)\n",
		req.MessageType(), h.RolloutID, h.RequestID, h.RequestedBy, topic, signed)
	return nil
}

// buildRequest makes the request of a kind from its header; create reads
// the plan file, approve names the wave when it is above 0.
func buildRequest(kind string, h schema.RequestHeader, planFile string, wave int) (schema.Request, error) {
	switch kind {
	case requestCreate:
		p, err := coordinator.LoadPlan(planFile)
		if err != nil {
			return nil, err
		}
		return &schema.CreateRollout{RequestHeader: h, Plan: p}, nil
	case requestPause:
		return &schema.Pause{RequestHeader: h}, nil
	case requestResume:
		return &schema.Resume{RequestHeader: h}, nil
	case requestApprove:
		a := &schema.Approve{RequestHeader: h}
		if wave > 0 {
			a.Wave = &wave
		}
		return a, nil
	case requestAbort:
		return &schema.Abort{RequestHeader: h}, nil
	case requestFinalize:
		return &schema.Finalize{RequestHeader: h}, nil
	}
	return nil, fmt.Errorf("%w: unknown request kind %q", ErrUsage, kind)
}

// publishRequest encodes req (validating it against its schema), publishes
// it and returns the topic it went to.
func (c *CLI) publishRequest(ctx context.Context, o requestOpts, signer *events.Signer, req schema.Request) (string, error) {
	host, _ := os.Hostname()
	enc := &events.Encoder{Topics: events.NewTopics(o.prefix), Source: "regshift-cli/" + host, Signer: signer}
	rec, err := enc.Encode(req)
	if err != nil {
		return "", err
	}
	log, err := c.logger("warn")
	if err != nil {
		return "", err
	}
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return "", err
	}
	pcfg := events.DefaultProducerConfig(strings.Split(o.brokers, ","))
	pcfg.RetryElapsed = o.timeout
	prod, err := events.NewProducer(pcfg, log, m)
	if err != nil {
		return "", err
	}
	defer prod.Close()
	if err := prod.Publish(ctx, rec); err != nil {
		return "", fmt.Errorf("publish to %s on %s: %w", rec.Topic, o.brokers, err)
	}
	return rec.Topic, nil
}

var requesterRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// defaultRequester is the signing key's id, else user@host, else "operator".
func defaultRequester(signer *events.Signer) string {
	if signer != nil {
		return signer.KeyID
	}
	name := "operator"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	if !requesterRE.MatchString(name) {
		return "operator"
	}
	return name
}

// newRequestID is "req-" and 16 random hex digits: the coordinator drops an
// id it has seen, so every request needs a new one.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "req-" + hex.EncodeToString(b[:])
}

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

// lastDecisions is how many decisions status shows.
const lastDecisions = 10

// renderRollout writes one rollout: phase, plan, gates, registry, each
// wave with its nodes, and the last decisions with their inputs. Times are
// shown as the coordinator recorded them (UTC).
func renderRollout(w io.Writer, r *coordinator.Rollout) {
	var flags []string
	if r.Paused {
		flags = append(flags, "PAUSED (resume continues)")
	}
	if r.Held {
		flags = append(flags, "HELD at a gate (approve passes, resume re-evaluates, abort switches back)")
	}
	fmt.Fprintf(w, "rollout %s: %s, wave %d/%d", r.ID, r.Phase, r.Wave+1, len(r.Waves))
	if r.Stage != "" {
		fmt.Fprintf(w, ", stage %s", r.Stage)
	}
	fmt.Fprintln(w)
	for _, f := range flags {
		fmt.Fprintf(w, "  %s\n", f)
	}
	p := r.Plan
	fmt.Fprintf(w, "%s (%s) -> %s (%s), finalize %s, epoch %d\n", p.From.Name, p.From.Kind, p.To.Name, p.To.Kind, p.Finalize, r.Epoch)
	fmt.Fprintf(w, "created %s, as of %s\n\n", clock(r.Created), clock(r.Now))

	g := p.Gates
	fmt.Fprintf(w, "gates:    ack timeout %ds, soak %ds, min healthy %.2f, min parity %.2f, failure budget %d, on failure %s\n",
		g.AckTimeoutSeconds, g.SoakSeconds, g.MinHealthyRatio, g.MinParity, g.FailureBudget, g.OnFailure)
	reg := r.Registry
	if reg.At.IsZero() {
		fmt.Fprintf(w, "registry: not measured yet\n")
	} else {
		fmt.Fprintf(w, "registry: reachable %s, healthy %s, bridge running %s, parity %.3f (at %s)%s\n", yesNo(reg.Reachable),
			yesNo(reg.Healthy), yesNo(reg.BridgeRunning), reg.Parity, clock(reg.At), suffix(" — ", reg.Detail))
	}

	target, label := waveTarget(r.Phase)
	for i, wv := range r.Waves {
		var nodes []*coordinator.Node
		reached := 0
		for _, id := range wv.Nodes {
			if n := r.Node(id); n != nil {
				nodes = append(nodes, n)
				if n.Reached == target {
					reached++
				}
			}
		}
		fmt.Fprintf(w, "\nwave %d/%d %s %s %d/%d %s%s\n", i+1, len(r.Waves), wv.Role, bar(reached, len(nodes)), reached, len(nodes), label, waveMark(r, i))
		var rows [][]string
		for _, n := range nodes {
			rows = append(rows, []string{"  " + n.ID, progress(n.Reached), string(n.Health), pending(n.Pending), suffix("failure: ", n.Failure)})
		}
		table(w, rows)
	}

	ds := r.Decisions
	fmt.Fprintf(w, "\ndecisions (last %d of %d):\n", min(len(ds), lastDecisions), len(ds))
	var rows [][]string
	for _, d := range ds[max(0, len(ds)-lastDecisions):] {
		rows = append(rows, []string{"  " + clock(d.At), string(d.Decision), decisionInputs(d)})
	}
	table(w, rows)
}

// waveTarget is the progress a wave's nodes are heading for in a phase.
func waveTarget(p coordinator.Phase) (coordinator.Progress, string) {
	switch p {
	case schema.PhaseSwitchingBack, schema.PhaseSwitchedBack:
		return schema.ReachedSwitchedBack, "switched back"
	case schema.PhaseFinalizing, schema.PhaseFinalized:
		return schema.ReachedUninstalled, "uninstalled"
	}
	return schema.ReachedActive, "active"
}

// waveMark says where a rolling rollout stands with wave i.
func waveMark(r *coordinator.Rollout, i int) string {
	if r.Phase != schema.PhaseRolling {
		return ""
	}
	switch {
	case i < r.Wave:
		return ", passed"
	case i > r.Wave:
		return ""
	case r.Held:
		return ", current: held at its gate"
	case !r.SoakStarted.IsZero():
		return ", current: soaking since " + clock(r.SoakStarted)
	}
	return ", current"
}

// bar is a progress bar of done out of n, at most 20 characters inside.
func bar(done, n int) string {
	width := min(n, 20)
	if n == 0 {
		return "[]"
	}
	full := done * width / n
	return "[" + strings.Repeat("#", full) + strings.Repeat("-", width-full) + "]"
}

// decisionInputs renders what a decision was made on: the check, observed
// against threshold, the nodes and the detail.
func decisionInputs(d coordinator.Decision) string {
	var parts []string
	if d.Check != "" {
		parts = append(parts, "check "+string(d.Check))
	}
	switch {
	case d.Observed != nil && d.Threshold != nil:
		parts = append(parts, fmt.Sprintf("observed %.3g vs threshold %.3g", *d.Observed, *d.Threshold))
	case d.Observed != nil:
		parts = append(parts, fmt.Sprintf("observed %.3g", *d.Observed))
	}
	if len(d.Nodes) > 0 {
		parts = append(parts, "nodes "+strings.Join(d.Nodes, ","))
	}
	if d.Detail != "" {
		parts = append(parts, d.Detail)
	}
	return strings.Join(parts, "; ")
}

// renderSummaries writes the list of rollouts.
func renderSummaries(w io.Writer, list []server.Summary) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no rollouts")
		return
	}
	rows := [][]string{{"ROLLOUT", "PHASE", "WAVE", "STOPPED", "NODES", "LAST DECISION"}}
	for _, s := range list {
		var stopped []string
		if s.Paused {
			stopped = append(stopped, "paused")
		}
		if s.Held {
			stopped = append(stopped, "held")
		}
		var counts []string
		for _, k := range slices.Sorted(maps.Keys(s.Nodes)) {
			counts = append(counts, fmt.Sprintf("%s=%d", k, s.Nodes[k]))
		}
		last := "-"
		if d := s.Decision; d != nil {
			last = clock(d.At) + " " + string(d.Decision) + suffix(" ", string(d.Check))
		}
		rows = append(rows, []string{s.ID, string(s.Phase), fmt.Sprintf("%d/%d", s.Wave, s.Waves), orDash(strings.Join(stopped, ",")),
			orDash(strings.Join(counts, " ")), last})
	}
	table(w, rows)
}

// renderNodes writes every node: its rollout, wave, progress, health, the
// command it has not answered and why it failed.
func renderNodes(w io.Writer, nodes []server.NodeView) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no nodes: no rollout holds any")
		return
	}
	rows := [][]string{{"NODE", "ROLLOUT", "WAVE", "ROLES", "PROGRESS", "HEALTH", "FAILURE", "PENDING"}}
	for _, n := range nodes {
		rows = append(rows, []string{n.ID, n.Rollout, strconv.Itoa(n.Wave + 1), strings.Join(n.Roles, ","),
			progress(n.Reached), string(n.Health), orDash(n.Failure), pending(n.Pending)})
	}
	table(w, rows)
}

// table writes rows in aligned columns, two spaces apart, without trailing
// blanks.
func table(w io.Writer, rows [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

func progress(p coordinator.Progress) string {
	if p == schema.ReachedNone {
		return "none"
	}
	return string(p)
}

// pending is a command sent and not answered yet: its kind, how often and
// since when it was sent.
func pending(p *coordinator.Pending) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%s sent %dx since %s (id %s)", p.Command.Kind, p.Sends, clock(p.FirstSent), p.Command.ID)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func suffix(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
