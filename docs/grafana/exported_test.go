package grafana

import (
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/regshift/regshift/coordinator/bridge"
	"github.com/regshift/regshift/coordinator/server"
	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/nodeagent"
	"github.com/regshift/regshift/registries/memory"
	"github.com/regshift/regshift/registries/registrytest"
)

// family is a metric the code registers.
type family struct {
	name    string
	labels  []string // its variable labels
	kind    string   // counter, gauge, histogram, summary; "" when the test cannot tell
	sources []string // who serves it: coordinator, agent, bridge
}

// exported builds the coordinator runtime and the node agent as their
// commands do, each on a fresh registry, and a bridge with a registerer,
// and lists every metric they register. Describe lists a vector that has
// no series yet (Gather would not).
func exported(t *testing.T) map[string]*family {
	t.Helper()
	out := map[string]*family{}
	add := func(source string, reg *prometheus.Registry, kinds map[string]string) {
		for _, d := range describe(reg) {
			name, labels := parseDesc(t, d)
			f := out[name]
			if f == nil {
				f = &family{name: name, labels: labels}
				out[name] = f
			}
			f.sources = append(f.sources, source)
			if k := kinds[name]; k != "" {
				f.kind = k
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs { // metrics without labels: their series exist at once
			if f := out[mf.GetName()]; f != nil {
				f.kind = kindOfFamily(mf.GetType())
			}
		}
	}

	// The transport's metrics, registered by both runtimes: recorded once
	// more to learn the kinds of its vectors.
	_, evKinds := record(t, func(r prometheus.Registerer) error { _, err := events.NewMetrics(r); return err })

	// The coordinator's key: it signs, the agent trusts the .pub.
	keys := t.TempDir()
	_, coordKey := keyPair(t, keys, "coord-1")
	coord := prometheus.NewRegistry()
	cfg := server.DefaultConfig()
	cfg.ID, cfg.SigningKey, cfg.AcceptUnsigned, cfg.NodeKeysDir = "coord-1", coordKey, true, t.TempDir()
	if _, err := server.New(cfg, server.Deps{Registry: coord}, registrytest.Logger(t)); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	add("coordinator", coord, evKinds)

	_, nodeKey := keyPair(t, t.TempDir(), "node-1")
	agent := prometheus.NewRegistry()
	acfg := nodeagent.DefaultConfig()
	acfg.Node, acfg.StateDir, acfg.Trust.KeysDir, acfg.Identity.SigningKey = "node-1", t.TempDir(), keys, nodeKey
	acfg.Role, acfg.Consumes = nodeagent.RoleConsumer, []string{"web"}
	if _, err := nodeagent.NewAgent(acfg, nodeagent.Deps{Registry: agent}, registrytest.Logger(t)); err != nil {
		t.Fatalf("agent: %v", err)
	}
	add("agent", agent, evKinds)

	// The coordinator runs its bridges without a registerer today (see
	// docs/operating.md): their metrics are those bridge.New registers when
	// given one.
	br, brKinds := record(t, func(r prometheus.Registerer) error {
		bcfg := bridge.DefaultConfig()
		bcfg.Metrics = r
		src, dst := memory.New(memory.NewStore(), nil), memory.New(memory.NewStore(), nil)
		t.Cleanup(func() { _, _ = src.Close(), dst.Close() })
		_, err := bridge.New(src, dst, bcfg, nil)
		return err
	})
	add("bridge", br, brKinds)
	return out
}

// recorder is a Registerer that keeps what is registered on it.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// record runs register on a recorder and returns its registry and the kind
// of each metric registered, by name.
func record(t *testing.T, register func(prometheus.Registerer) error) (*prometheus.Registry, map[string]string) {
	t.Helper()
	r := &recorder{Registry: prometheus.NewRegistry()}
	if err := register(r); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, c := range r.collectors {
		for _, d := range describe(c) {
			name, _ := parseDesc(t, d)
			kinds[name] = kindOfCollector(c)
		}
	}
	return r.Registry, kinds
}

// kindOfCollector tells a vector's kind by its type. A metric without
// labels is told by Gather instead: the interfaces Histogram and Summary
// (and Counter, which a Gauge satisfies) cannot be told apart by a type
// switch.
func kindOfCollector(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	}
	return ""
}

func kindOfFamily(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram"
	case dto.MetricType_SUMMARY:
		return "summary"
	}
	return ""
}

func describe(c prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// descRE reads Desc.String(): Desc{fqName: "…", help: "…", …,
// variableLabels: {a,b}}; a label with a constraint shows as c(a).
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), .*variableLabels: \{([^{}]*)\}\}$`)

func parseDesc(t *testing.T, d *prometheus.Desc) (string, []string) {
	t.Helper()
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("cannot read the metric name and labels from %s", d)
	}
	name, err := strconv.Unquote(m[1])
	if err != nil || name == "" {
		t.Fatalf("cannot read the metric name from %s", d)
	}
	var labels []string
	for l := range strings.SplitSeq(m[2], ",") {
		if l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "c("), ")"); l != "" {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	return name, labels
}

// keyPair writes <dir>/<id>.key and .pub, as `regshift keys generate` does.
func keyPair(t *testing.T, dir, id string) (pub, priv string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err = events.WriteKeyPair(dir, id, key)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}
