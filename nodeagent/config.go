package nodeagent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/nodeagent/ifacepkg"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// Config is the agent's YAML configuration. Zero values mean the defaults
// of DefaultConfig; LoadConfig fills them in and validates.
type Config struct {
	// Node is this host's id in the fleet: the key of its commands.
	Node string `yaml:"node"`
	// Role: provider (registers Services), consumer (resolves Consumes) or both.
	Role Role `yaml:"role"`
	// StateDir holds the persisted state and the installed packages.
	StateDir string `yaml:"stateDir"`
	// Start is the interface the host runs on before any rollout (ZooKeeper).
	Start StartInterface `yaml:"startInterface"`
	// Services this host offers (providers).
	Services []Service `yaml:"services"`
	// Consumes lists the services this host's apps resolve (consumers).
	Consumes []string           `yaml:"consumes"`
	Kafka    events.KafkaConfig `yaml:"kafka"`
	Trust    Trust              `yaml:"trust"`
	Identity Identity           `yaml:"identity"`
	API      API                `yaml:"api"`
	// HealthInterval is how often Health is published (and on every change).
	HealthInterval time.Duration `yaml:"healthInterval"`
	// ParityThreshold is the fraction (0..1] of the fallback's instances the
	// primary must also return for a consumer to use the primary's answer.
	ParityThreshold float64 `yaml:"parityThreshold"`
	// DeregisterOnShutdown removes this host's registrations when it stops.
	DeregisterOnShutdown *bool `yaml:"deregisterOnShutdown"`
	// MaxPackageBytes caps a downloaded interface package.
	MaxPackageBytes int64 `yaml:"maxPackageBytes"`
	// Fetch bounds package downloads.
	Fetch Fetch `yaml:"fetch"`
	// Probe bounds a consumer's probes of the endpoints it resolves.
	Probe Probe `yaml:"probe"`
}

// Fetch bounds how the agent downloads interface packages. Timeout is below
// schema.PlanMinAckTimeoutSeconds, the least ack timeout any plan may set,
// so a fetch always ends (done or failed with its reason) before the
// coordinator stops waiting for the ack.
type Fetch struct {
	// ConnectTimeout bounds the TCP connect and TLS handshake (3s).
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// HeaderTimeout bounds the wait for the response headers (5s).
	HeaderTimeout time.Duration `yaml:"headerTimeout"`
	// Timeout bounds the whole fetch, body included (8s; below 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxRedirects followed, never from https to http (5; 0..10).
	MaxRedirects int `yaml:"maxRedirects"`
	// FileRoot is the only folder file:// package URLs may name; empty (the
	// default) refuses file:// URLs.
	FileRoot string `yaml:"fileRoot"`
}

// fetchConfig is the package fetcher's config.
func (c Config) fetchConfig() ifacepkg.FetchConfig {
	f := c.Fetch
	return ifacepkg.FetchConfig{ConnectTimeout: f.ConnectTimeout, HeaderTimeout: f.HeaderTimeout, Timeout: f.Timeout,
		MaxBytes: c.MaxPackageBytes, MaxRedirects: f.MaxRedirects, FileRoot: f.FileRoot}
}

// StartInterface names the registry the host uses before any rollout.
type StartInterface struct {
	Name     string `yaml:"name"`     // how commands name it, e.g. "zookeeper"
	Type     string `yaml:"type"`     // zookeeper | consul
	Address  string `yaml:"address"`  // host:port[,host:port]
	BasePath string `yaml:"basePath"` // ZooKeeper: Curator base path
}

// Service is one service this host registers.
type Service struct {
	Name    string            `yaml:"name"`
	ID      string            `yaml:"id"`      // default <name>-<node>
	Address string            `yaml:"address"` // default 127.0.0.1
	Port    int               `yaml:"port"`
	Tags    []string          `yaml:"tags"`
	Meta    map[string]string `yaml:"meta"`
	Check   Check             `yaml:"check"`
}

// Check is how the agent learns the service works: an HTTP GET (any 2xx or
// 3xx status, and Body in the response when set) or a TCP connect, run every
// Interval within Timeout. The result is the instance's health in every
// registry it is registered in and in the node's health report. With
// neither HTTP nor TCP the instance is healthy while the agent runs.
type Check struct {
	HTTP string `yaml:"http"`
	TCP  string `yaml:"tcp"`
	// Body, with HTTP, is text the response's first 64 KiB must contain.
	Body     string        `yaml:"body"`
	Interval time.Duration `yaml:"interval"` // 10s
	Timeout  time.Duration `yaml:"timeout"`  // 2s; below the interval
	// FailuresBeforeCritical is how many results in a row must fail before
	// a passing instance turns critical (Consul's failures_before_critical,
	// Kubernetes' failureThreshold): 2, 1..10. One lost packet is no
	// switch-back.
	FailuresBeforeCritical int `yaml:"failuresBeforeCritical"`
	// SuccessBeforePassing is how many results in a row must pass before a
	// critical instance turns passing again: 1, 1..10.
	SuccessBeforePassing int `yaml:"successBeforePassing"`
}

// Kind is the check's kind as health reports name it: http, tcp, or ""
// when the service has no check.
func (c Check) Kind() string {
	switch {
	case c.HTTP != "":
		return "http"
	case c.TCP != "":
		return "tcp"
	}
	return ""
}

// Probe bounds a consumer's probes of the endpoints it resolves. After an
// activate, each health round the agent connects to a sample of the
// endpoints each consumed service resolves to through its primary and its
// fallback interface (TCP, or an HTTP GET of the provider's check path when
// the instance carries one in registries.MetaCheckPath). A service whose
// endpoints on the primary do not accept while those on the fallback do,
// for Failures rounds in a row, makes the primary critical, naming the
// service and the endpoints.
type Probe struct {
	// Disabled turns the probes off (the report then carries none).
	Disabled bool `yaml:"disabled"`
	// PerService is how many endpoints of one service are probed per
	// interface and round: 4, 1..64.
	PerService int `yaml:"perService"`
	// PerRound bounds all probes of one round: 64, 1..1024. Services beyond
	// it are probed in later rounds, in turn.
	PerRound int `yaml:"perRound"`
	// Timeout bounds one probe: 1s or half healthInterval, whichever is
	// less; below healthInterval.
	Timeout time.Duration `yaml:"timeout"`
	// Failures is how many rounds in a row a service must fail on the
	// primary and not on the fallback before the primary is critical: 3,
	// 1..10.
	Failures int `yaml:"failures"`
	// Concurrency is how many probes run at once: 8, 1..64.
	Concurrency int `yaml:"concurrency"`
}

// Trust says whose commands the agent accepts.
type Trust struct {
	// KeysDir holds the coordinator public keys as <key id>.pub (what
	// `regshift keys generate` writes) and an optional "revoked" file of key
	// ids, one a line. A running agent reads it again within seconds of a
	// change (events.Keyring.Watch).
	KeysDir      string        `yaml:"keysDir"`
	MaxClockSkew time.Duration `yaml:"maxClockSkew"`
}

// Identity is the key the agent signs its acks, health and hello with.
type Identity struct {
	// SigningKey is this node's private key file, <node>.key as `regshift
	// keys generate -id <node>` writes it: its key id (the file name) must
	// be the node id, because the coordinator accepts a node's events only
	// under that node's key. The coordinator trusts the matching .pub in its
	// nodeKeysDir.
	SigningKey string `yaml:"signingKey"`
}

// API is the local API for the host's apps.
type API struct {
	// Listen is 127.0.0.1:PORT, [::1]:PORT or unix:/path.
	Listen string `yaml:"listen"`
}

// DefaultConfig returns the defaults every unset field takes.
func DefaultConfig() Config {
	yes := true
	return Config{
		Role:                 RoleProvider,
		StateDir:             "/var/lib/regshift-agent",
		Start:                StartInterface{Name: "zookeeper", Type: string(registries.KindZooKeeper), Address: "127.0.0.1:2181", BasePath: "/services"},
		Kafka:                events.KafkaConfig{Brokers: []string{"127.0.0.1:9092"}, TopicPrefix: "regshift."},
		Trust:                Trust{MaxClockSkew: 30 * time.Second},
		API:                  API{Listen: "127.0.0.1:7070"},
		HealthInterval:       5 * time.Second,
		ParityThreshold:      1.0,
		DeregisterOnShutdown: &yes,
		MaxPackageBytes:      64 << 20,
		Fetch:                Fetch{ConnectTimeout: 3 * time.Second, HeaderTimeout: 5 * time.Second, Timeout: 8 * time.Second, MaxRedirects: 5},
		Probe:                Probe{PerService: 4, PerRound: 64, Failures: 3, Concurrency: 8}, // Timeout: fill

	}
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("invalid agent config")

// LoadConfig reads a YAML file, refuses unknown fields, applies defaults and
// validates. Errors name the file, and the line or the field.
func LoadConfig(file string) (Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// ParseConfig is LoadConfig on bytes.
func ParseConfig(b []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.fill()
	return c, c.validate()
}

func (c *Config) fill() {
	if c.Probe.Timeout == 0 {
		c.Probe.Timeout = min(time.Second, c.HealthInterval/2)
	}
	for i := range c.Services {
		s := &c.Services[i]
		if s.ID == "" {
			s.ID = s.Name + "-" + c.Node
		}
		if s.Address == "" {
			s.Address = "127.0.0.1"
		}
		if s.Check.Interval == 0 {
			s.Check.Interval = 10 * time.Second
		}
		if s.Check.Timeout == 0 {
			s.Check.Timeout = 2 * time.Second
		}
		if s.Check.FailuresBeforeCritical == 0 {
			s.Check.FailuresBeforeCritical = 2
		}
		if s.Check.SuccessBeforePassing == 0 {
			s.Check.SuccessBeforePassing = 1
		}
	}
}

// maxCheckBody bounds a check's expected body text.
const maxCheckBody = 1024

// maxFetch is what a whole package fetch must stay below: the least ack
// timeout a plan may set (coordinator.ValidatePlan and the JSON Schema
// refuse a shorter one).
const maxFetch = schema.PlanMinAckTimeoutSeconds * time.Second

var (
	idRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

func (c *Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case !idRE.MatchString(c.Node):
		return bad("node", "%q must be 1-128 letters, digits, '.', '_' or '-'", c.Node)
	case !c.Role.Valid():
		return bad("role", "%q, want provider, consumer or both", c.Role)
	case c.StateDir == "" || !path.IsAbs(c.StateDir):
		return bad("stateDir", "%q must be an absolute path", c.StateDir)
	case !idRE.MatchString(c.Start.Name):
		return bad("startInterface.name", "%q is not a valid name", c.Start.Name)
	case !registries.Kind(c.Start.Type).Valid():
		return bad("startInterface.type", "%q, want %s", c.Start.Type, registries.KindNames())
	case c.HealthInterval < 100*time.Millisecond:
		return bad("healthInterval", "%s is below 100ms", c.HealthInterval)
	case c.ParityThreshold <= 0 || c.ParityThreshold > 1:
		return bad("parityThreshold", "%v, want a fraction in (0, 1]", c.ParityThreshold)
	case c.MaxPackageBytes < 1024:
		return bad("maxPackageBytes", "%d is below 1024", c.MaxPackageBytes)
	case c.Trust.MaxClockSkew <= 0 || c.Trust.MaxClockSkew > 10*time.Minute:
		// The command verifier needs a positive skew: 0 would pass here and
		// stop the agent when it starts consuming.
		return bad("trust.maxClockSkew", "%s, want above 0 and at most 10m", c.Trust.MaxClockSkew)
	case c.Fetch.Timeout <= 0 || c.Fetch.Timeout >= maxFetch:
		return bad("fetch.timeout", "%s, want above 0 and below %s (the least ack timeout a plan may set)", c.Fetch.Timeout, maxFetch)
	case c.Fetch.ConnectTimeout <= 0 || c.Fetch.ConnectTimeout > c.Fetch.Timeout:
		return bad("fetch.connectTimeout", "%s, want above 0 and at most fetch.timeout %s", c.Fetch.ConnectTimeout, c.Fetch.Timeout)
	case c.Fetch.HeaderTimeout <= 0 || c.Fetch.HeaderTimeout > c.Fetch.Timeout:
		return bad("fetch.headerTimeout", "%s, want above 0 and at most fetch.timeout %s", c.Fetch.HeaderTimeout, c.Fetch.Timeout)
	case c.Fetch.MaxRedirects < 0 || c.Fetch.MaxRedirects > 10:
		return bad("fetch.maxRedirects", "%d, want 0..10", c.Fetch.MaxRedirects)
	case c.Fetch.FileRoot != "" && !path.IsAbs(c.Fetch.FileRoot):
		return bad("fetch.fileRoot", "%q must be an absolute path (or empty: no file URLs)", c.Fetch.FileRoot)
	case c.Trust.KeysDir == "" || !path.IsAbs(c.Trust.KeysDir):
		return bad("trust.keysDir", "%q must be the absolute path of the coordinator keys' folder", c.Trust.KeysDir)
	case c.Identity.SigningKey == "" || !path.IsAbs(c.Identity.SigningKey):
		return bad("identity.signingKey", "%q must be the absolute path of this node's private key, %s%s", c.Identity.SigningKey, c.Node, events.PrivateKeyExt)
	case events.CheckKeyID(c.Node) != nil:
		return bad("identity.signingKey", "the node id %q cannot name a key (%v): a node signs under its id", c.Node, events.CheckKeyID(c.Node))
	case path.Base(c.Identity.SigningKey) != c.Node+events.PrivateKeyExt:
		return bad("identity.signingKey", "%q is not %s%s: the key id must be the node id, the coordinator accepts a node's events only under its own key",
			c.Identity.SigningKey, c.Node, events.PrivateKeyExt)
	}
	if err := checkAddrs(c.Start.Address); err != nil {
		return bad("startInterface.address", "%v", err)
	}
	if err := c.Kafka.Check("kafka", true); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := checkListen(c.API.Listen); err != nil {
		return bad("api.listen", "%v", err)
	}
	if c.Role.Registers() && len(c.Services) == 0 {
		return bad("services", "a %s must offer at least one service", c.Role)
	}
	if !c.Role.Registers() && len(c.Services) > 0 {
		return bad("services", "a consumer offers no services; set role: both")
	}
	if c.Role.Resolves() && len(c.Consumes) == 0 {
		return bad("consumes", "a %s must name at least one service it resolves", c.Role)
	}
	if n := len(c.Services) + len(c.Consumes); n > maxServices {
		return bad("services", "%d services offered and consumed, at most %d in all (what Hello carries)", n, maxServices)
	}
	ids := map[string]bool{}
	for i, s := range c.Services {
		f := fmt.Sprintf("services[%d]", i)
		switch {
		case !serviceRE.MatchString(s.Name):
			return bad(f+".name", "%q must be 1-63 letters, digits, '.', '_' or '-'", s.Name)
		case !idRE.MatchString(s.ID) || strings.Contains(s.ID, "/"):
			return bad(f+".id", "%q is not a valid instance id", s.ID)
		case ids[s.ID]:
			return bad(f+".id", "%q is used twice", s.ID)
		case s.Port < 1 || s.Port > 65535:
			return bad(f+".port", "%d is outside 1..65535", s.Port)
		case net.ParseIP(s.Address) == nil:
			return bad(f+".address", "%q is not an IP address", s.Address)
		case s.Check.HTTP != "" && s.Check.TCP != "":
			return bad(f+".check", "set http or tcp, not both")
		case s.Check.HTTP != "" && !strings.HasPrefix(s.Check.HTTP, "http://") && !strings.HasPrefix(s.Check.HTTP, "https://"):
			return bad(f+".check.http", "%q is not an http(s) URL", s.Check.HTTP)
		case s.Check.Timeout >= s.Check.Interval:
			return bad(f+".check.timeout", "%s must be below the interval %s", s.Check.Timeout, s.Check.Interval)
		case s.Check.Timeout <= 0:
			return bad(f+".check.timeout", "%s must be above 0", s.Check.Timeout)
		case s.Check.Body != "" && s.Check.HTTP == "":
			return bad(f+".check.body", "needs check.http")
		case len(s.Check.Body) > maxCheckBody:
			return bad(f+".check.body", "%d bytes, at most %d", len(s.Check.Body), maxCheckBody)
		case s.Check.FailuresBeforeCritical < 1 || s.Check.FailuresBeforeCritical > 10:
			return bad(f+".check.failuresBeforeCritical", "%d, want 1..10", s.Check.FailuresBeforeCritical)
		case s.Check.SuccessBeforePassing < 1 || s.Check.SuccessBeforePassing > 10:
			return bad(f+".check.successBeforePassing", "%d, want 1..10", s.Check.SuccessBeforePassing)
		}
		if s.Check.HTTP != "" {
			if u, err := url.Parse(s.Check.HTTP); err != nil || u.Host == "" {
				return bad(f+".check.http", "%q is not an http(s) URL with a host", s.Check.HTTP)
			}
		}
		if s.Check.TCP != "" {
			if err := checkAddrs(s.Check.TCP); err != nil {
				return bad(f+".check.tcp", "%v", err)
			}
		}
		ids[s.ID] = true
	}
	p := c.Probe
	switch {
	case p.PerService < 1 || p.PerService > schema.MaxProbed:
		return bad("probe.perService", "%d, want 1..%d", p.PerService, schema.MaxProbed)
	case p.PerRound < 1 || p.PerRound > 1024:
		return bad("probe.perRound", "%d, want 1..1024", p.PerRound)
	case p.Timeout <= 0 || p.Timeout >= c.HealthInterval:
		return bad("probe.timeout", "%s, want above 0 and below healthInterval %s", p.Timeout, c.HealthInterval)
	case p.Failures < 1 || p.Failures > 10:
		return bad("probe.failures", "%d, want 1..10", p.Failures)
	case p.Concurrency < 1 || p.Concurrency > 64:
		return bad("probe.concurrency", "%d, want 1..64", p.Concurrency)
	}
	for i, name := range c.Consumes {
		if !serviceRE.MatchString(name) {
			return bad(fmt.Sprintf("consumes[%d]", i), "%q is not a service name", name)
		}
	}
	return nil
}

func checkAddrs(list string) error {
	for _, a := range strings.Split(list, ",") {
		if _, p, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || p == "" {
			return fmt.Errorf("%q is not host:port", a)
		}
	}
	return nil
}

// checkListen keeps the local API on loopback or a unix socket.
func checkListen(l string) error {
	if sock, ok := strings.CutPrefix(l, "unix:"); ok {
		if !path.IsAbs(sock) {
			return fmt.Errorf("%q: the socket path must be absolute", l)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(l)
	if err != nil {
		return fmt.Errorf("%q is neither host:port nor unix:/path", l)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: the local API listens on loopback or a unix socket only", l)
	}
	return nil
}
