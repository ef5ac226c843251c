// Package demo is `regshift demo`: it migrates a small live fleet from
// ZooKeeper to Consul in place while its apps call each other, and reports
// what happened — or, with Fail, breaks something on the way (Consul dies
// under the consumer wave, or the provider canary's app fails its health
// check) and shows the coordinator switch every touched node back.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/open"
	"github.com/regshift/regshift/schema"
)

// Options configure the demo.
type Options struct {
	Kafka     []string // brokers; none: an embedded broker (franz-go's kfake) with a data dir
	ZooKeeper string   // host:port of the fleet's ZooKeeper
	Etcd      string   // host:port of the fleet's etcd (with -from or -to etcd)
	Eureka    string   // host:port of the fleet's Eureka server (with -from or -to eureka)
	// From and To are the kinds the fleet moves between (zookeeper and
	// consul when empty; see Kinds and CheckDirection).
	From, To  registries.Kind
	ConsulBin string // the consul binary the demo starts its own Consul with
	Providers int
	Consumers int
	Fail      Failure       // what the failure demo breaks; FailNone: nothing
	CallEvery time.Duration // each consumer's call period
	// Hold keeps the coordinator and the fleet up this long after the
	// report, for a look at the console; zero: no hold; negative: until ctx
	// ends. The end of ctx ends any hold, and the demo's outcome stays the
	// rollout's.
	Hold time.Duration
	Log  *slog.Logger // component logs (quiet by default)
}

// Failure is what the failure demo breaks.
type Failure string

const (
	FailNone   Failure = ""       // nothing: the migration finalizes
	FailConsul Failure = "consul" // the demo's Consul is killed under the consumer wave
	FailApp    Failure = "app"    // the provider canary's app fails its health check after activate
)

// Failures are the failure demos there are.
var Failures = []Failure{FailConsul, FailApp}

// Validate refuses a Failure that is none of Failures nor FailNone.
func (f Failure) Validate() error {
	if f == FailNone || slices.Contains(Failures, f) {
		return nil
	}
	names := make([]string, len(Failures))
	for i, v := range Failures {
		names[i] = string(v)
	}
	return fmt.Errorf("%q is no failure demo: want %s, or empty for none", string(f), strings.Join(names, " or "))
}

// world is everything the demo started, to stop at the end.
type world struct {
	o            Options
	out          io.Writer
	dir          string
	prefix       string
	basePath     string
	service      string
	consul       *exec.Cmd
	consulExited chan struct{}
	consulAPI    string
	apps         map[string]*provider // by provider node
	stops        []func()
}

func (w *world) stop() {
	for i := len(w.stops) - 1; i >= 0; i-- {
		w.stops[i]()
	}
}

func (w *world) say(format string, args ...any) {
	fmt.Fprintf(w.out, "%s  %s\n", time.Now().Format("15:04:05.0"), fmt.Sprintf(format, args...))
}

// Run runs the demo and writes its story and report to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if err := o.Fail.Validate(); err != nil {
		return fmt.Errorf("demo: fail: %w", err)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Nanoseconds: two demos started in the same second (a test beside a
	// `make demo`) must not share topics, base path or election group.
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	dir, err := os.MkdirTemp("", "regshift-demo-")
	if err != nil {
		return err
	}
	w := &world{o: o, out: out, dir: dir, prefix: "demo-" + stamp + ".", basePath: "/regshift-demo-" + stamp, service: "orders-" + stamp,
		apps: map[string]*provider{}}
	defer os.RemoveAll(dir)
	defer w.stop()
	if o.From == "" {
		o.From = registries.KindZooKeeper
	}
	if o.To == "" {
		o.To = registries.KindConsul
	}
	if err := CheckDirection(o.From, o.To); err != nil {
		return err
	}
	if o.Fail == FailConsul && o.To != registries.KindConsul {
		return fmt.Errorf("-fail consul kills the registry the fleet moves to: it needs -to consul, not %s", o.To)
	}
	w.o = o
	w.say("regshift demo: %d provider and %d consumer hosts move from %s to %s while their apps call each other", o.Providers, o.Consumers, o.From, o.To)
	if len(w.o.Kafka) == 0 {
		if err := w.embeddedKafka(); err != nil {
			return err
		}
	}
	if o.From == registries.KindConsul || o.To == registries.KindConsul {
		if err := w.startConsul(ctx); err != nil {
			return err
		}
	}
	from, to := w.end(o.From), w.end(o.To)
	keysDir, opKey, err := w.keys()
	if err != nil {
		return err
	}
	fromDigest, err := w.buildPackage(from)
	if err != nil {
		return err
	}
	toDigest, err := w.buildPackage(to)
	if err != nil {
		return err
	}
	api, err := w.startCoordinator(ctx, keysDir)
	if err != nil {
		return err
	}
	callers, nodes, err := w.startFleet(ctx, keysDir, from)
	if err != nil {
		return err
	}
	before := w.registrySnapshot(ctx)
	w.say("fleet up: %d agents registered in %s (%s), apps calling %s through their agents", len(nodes), from.kind, from.address, w.service)
	time.Sleep(2 * time.Second) // let the apps make calls on the old interface first: part of the story

	rollout := "demo-" + stamp
	plan := w.plan(from, to, api+"/packages/", fromDigest, toDigest, nodes)
	if err := w.request(ctx, opKey, &schema.CreateRollout{RequestHeader: header(rollout, opKey.KeyID), Plan: plan}); err != nil {
		return err
	}
	w.say("rollout %s requested (signed by operator key demo-operator)", rollout)
	start := time.Now()
	final, phases, err := w.watch(ctx, api, rollout)
	if err != nil {
		return err
	}
	total := time.Since(start)
	time.Sleep(time.Second)
	var ok, failed int64
	for _, c := range callers {
		c.stop()
		ok += c.ok.Load()
		failed += c.failed.Load()
	}
	after := w.registrySnapshot(ctx)
	w.report(final, phases, total, callers, ok, failed, before, after)
	w.hold(ctx, api)
	if o.Fail != FailNone && final.Phase != schema.PhaseSwitchedBack {
		return fmt.Errorf("the failure demo (%s) ended %s, not switched back", o.Fail, final.Phase)
	}
	if o.Fail == FailNone && final.Phase != schema.PhaseFinalized {
		return fmt.Errorf("the rollout ended %s, not finalized", final.Phase)
	}
	return nil
}

// hold keeps everything up for Options.Hold after the report, so the
// console still shows the rollout, its nodes and the coordinator; the end
// of ctx (Ctrl-C) ends it early.
func (w *world) hold(ctx context.Context, api string) {
	switch d := w.o.Hold; {
	case d == 0:
		return
	case d < 0:
		w.say("holding the coordinator open at %s/ until Ctrl-C", api)
		<-ctx.Done()
	default:
		w.say("holding the coordinator open for %s at %s/ (Ctrl-C ends it; -hold 0 skips, -hold -1s holds until Ctrl-C)", d, api)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// header is a new request's header, by the key that signs it.
func header(rollout, by string) schema.RequestHeader {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return schema.RequestHeader{RequestID: fmt.Sprintf("req-%x", b), RolloutID: rollout, RequestedBy: by, RequestedAt: time.Now().UTC()}
}

// startConsul runs a Consul dev agent of the demo's own on free ports, so
// the Consul failure demo can kill it without touching anything else. The
// ports are picked free, but another process may take one before Consul
// binds it: an agent that exits before it elects a leader is started again
// on new ports, up to three times, and the error quotes its log.
func (w *world) startConsul(ctx context.Context) error {
	const attempts = 3
	var last error
	for i := 1; i <= attempts; i++ {
		if last = w.startConsulOnce(ctx, i); last == nil {
			w.say("Consul %s up (the demo's own: -fail consul kills it)", w.consulAPI)
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return last
}

// consulStartTimeout bounds one attempt's wait for a leader; a dev agent
// elects itself in about a second.
const consulStartTimeout = 60 * time.Second

func (w *world) startConsulOnce(ctx context.Context, attempt int) error {
	// Serf binds TCP and UDP on its ports; every port is held while the
	// others are picked, so no two are the same.
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	p := make([]string, len(ports))
	for i, port := range ports {
		p[i] = strconv.Itoa(port)
	}
	logPath := filepath.Join(w.dir, fmt.Sprintf("consul-%d.log", attempt))
	cmd := exec.Command(w.o.ConsulBin, "agent", "-dev", "-node", "regshift-demo", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-advertise", "127.0.0.1", "-data-dir", filepath.Join(w.dir, fmt.Sprintf("consul-%d", attempt)), "-http-port", p[0], "-dns-port", "-1",
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-https-port", "-1", "-server-port", p[1], "-serf-lan-port", p[2],
		"-serf-wan-port", p[3], "-log-level", "warn")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start consul (%s; run `make deps`): %w", w.o.ConsulBin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	w.consul, w.consulExited, w.consulAPI = cmd, exited, "127.0.0.1:"+p[0]
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(consulStartTimeout)
	for {
		resp, err := client.Get("http://" + w.consulAPI + "/v1/status/leader")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if len(strings.Trim(string(b), "\"\n ")) > 0 {
				w.stops = append(w.stops, w.killConsul)
				return nil
			}
		}
		select {
		case <-exited:
			w.consul = nil
			return fmt.Errorf("consul (attempt %d, ports %s) exited before it elected a leader: %s (log %s)",
				attempt, strings.Join(p, ","), logTail(logPath, 400), logPath)
		case <-ctx.Done():
			w.killConsul()
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.killConsul()
			return fmt.Errorf("consul (attempt %d, ports %s) did not elect a leader in %s: %s (log %s)",
				attempt, strings.Join(p, ","), consulStartTimeout, logTail(logPath, 400), logPath)
		}
	}
}

// logTail is the last n bytes of a log, on one line.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	t := strings.Join(strings.Fields(string(b)), " ")
	if t == "" {
		return "(empty log)"
	}
	return t
}

// embeddedKafka starts an in-process Kafka-protocol broker (kfake) that
// keeps its log in the demo's folder.
func (w *world) embeddedKafka() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(w.dir, "kafka")), kfake.SyncWrites())
	if err != nil {
		return fmt.Errorf("embedded kafka: %w", err)
	}
	w.stops = append(w.stops, c.Close)
	w.o.Kafka = c.ListenAddrs()
	w.say("embedded Kafka (kfake) on %s", strings.Join(w.o.Kafka, ","))
	return nil
}

func (w *world) killConsul() {
	if w.consul != nil {
		_ = w.consul.Process.Kill()
		<-w.consulExited
		w.consul = nil
	}
}

// keys writes the coordinator's and an operator's key pairs, and enrols
// every host of the fleet: its agent's key pair in identity/, its public
// key in nodes/, the folder the coordinator trusts for agent events (read
// as it starts, before the fleet starts, and followed while it runs).
func (w *world) keys() (keysDir string, operator *events.Signer, err error) {
	keysDir = filepath.Join(w.dir, "keys")
	if _, err := writeKeyPair(keysDir, "demo-coordinator"); err != nil {
		return "", nil, err
	}
	operators := filepath.Join(w.dir, "operators")
	if operator, err = writeKeyPair(operators, "demo-operator"); err != nil {
		return "", nil, err
	}
	// It creates the rollout: an admin.
	if err := os.WriteFile(filepath.Join(operators, events.RolesFile), []byte("demo-operator "+string(events.RoleAdmin)+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	for _, node := range w.hosts() {
		if _, err := writeKeyPair(filepath.Join(w.dir, "identity"), node); err != nil {
			return "", nil, err
		}
		if err := os.MkdirAll(filepath.Join(w.dir, "nodes"), 0o700); err != nil {
			return "", nil, err
		}
		pub := node + events.PublicKeyExt
		if err := os.Link(filepath.Join(w.dir, "identity", pub), filepath.Join(w.dir, "nodes", pub)); err != nil {
			return "", nil, err
		}
	}
	return keysDir, operator, nil
}

// hosts are the fleet's node ids: the providers, then the consumers.
func (w *world) hosts() []string {
	var out []string
	for i := 1; i <= w.o.Providers; i++ {
		out = append(out, fmt.Sprintf("provider-%d", i))
	}
	for i := 1; i <= w.o.Consumers; i++ {
		out = append(out, fmt.Sprintf("consumer-%d", i))
	}
	return out
}

// writeKeyPair writes a new key pair <dir>/<id>.key and .pub and returns its signer.
func writeKeyPair(dir, id string) (*events.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, _, err := events.WriteKeyPair(dir, id, priv); err != nil {
		return nil, err
	}
	return events.NewSigner(id, priv)
}

func freePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts picks n distinct ports on 127.0.0.1 that are free for both TCP
// and UDP, holding each until all are picked.
func freePorts(n int) ([]int, error) {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50*n {
			return nil, fmt.Errorf("no %d free TCP+UDP ports on 127.0.0.1 after %d tries", n, tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // UDP taken: keep the TCP one held so it is not picked again
		}
		held = append(held, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// registrySnapshot lists the demo service's instances in both registries,
// by kind.
func (w *world) registrySnapshot(ctx context.Context) map[string][]string {
	out := map[string][]string{}
	for _, e := range []end{w.end(w.o.From), w.end(w.o.To)} {
		settings := e.settings
		settings.KeepOnClose = true
		r, err := open.Open(e.kind, settings, w.o.Log)
		if err != nil {
			out[e.name()] = []string{"(" + err.Error() + ")"}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := r.Resolve(cctx, w.service)
		cancel()
		_ = r.Close()
		if err != nil {
			out[e.name()] = []string{"(unreachable)"}
			continue
		}
		for _, in := range got {
			mark := ""
			if in.Metadata[registries.MetaMirrored] != "" {
				mark = " (mirror)"
			}
			out[e.name()] = append(out[e.name()], in.ID+mark)
		}
		slices.Sort(out[e.name()])
	}
	return out
}
