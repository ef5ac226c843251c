package servers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Private is a server of its own for one test — for fault tests that stop,
// restart or kill a server without disturbing the shared ones of `make up`.
// It runs through scripts/services.sh on free loopback ports with its data,
// logs and PID under the test's temporary folder, and is stopped at cleanup.
type Private struct {
	kind   Kind
	addr   string
	sasl   string
	secure string // a locked-down Kafka's folder of certificates and passwords
	env    []string
	run    string
	mu     sync.Mutex
	alive  bool
}

// StartPrivate starts a private ZooKeeper, Kafka, Consul, etcd or Eureka and
// waits until it answers (the same readiness checks as `make up`). It needs
// `make deps` to have run; when it cannot start, the test fails with the
// server's log tail.
func StartPrivate(t testing.TB, kind Kind) *Private {
	t.Helper()
	return startPrivate(t, kind, "")
}

// StartSecureKafka starts a private Kafka locked down as
// `REGSHIFT_KAFKA_SECURE=1 make up` starts one (scripts/kafka-secure.sh):
// its only client listener, Addr, speaks SASL_SSL (SCRAM-SHA-512) with a
// certificate of a CA of its own (CAFile); KRaft's StandardAuthorizer lets
// each principal (KafkaAdmin, KafkaCoordinator, KafkaAgent, KafkaOperator;
// passwords in PasswordFile) do only its part on the topics of prefix.
func StartSecureKafka(t testing.TB, prefix string) *Private {
	t.Helper()
	return startPrivate(t, Kafka, prefix)
}

// The principals of a locked-down Kafka.
const (
	KafkaAdmin       = "admin" // super user
	KafkaCoordinator = "coordinator"
	KafkaAgent       = "agent"
	KafkaOperator    = "operator"
)

// CAFile is the PEM certificate of the CA that signed a locked-down
// Kafka's certificate.
func (p *Private) CAFile() string { return filepath.Join(p.secure, "tls", "ca.pem") }

// PasswordFile holds the SCRAM password of a locked-down Kafka's principal.
func (p *Private) PasswordFile(user string) string {
	return filepath.Join(p.secure, "users", user+".password")
}

// startPrivate starts a private server; a Kafka is locked down for the
// topics of securePrefix unless it is empty.
func startPrivate(t testing.TB, kind Kind, securePrefix string) *Private {
	t.Helper()
	need(t, kind, "a private instance", "make deps", installed(kind))
	run, err := os.MkdirTemp("", "regshift-"+string(kind)+"-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Private{kind: kind, run: run, env: []string{"REGSHIFT_RUN_DIR=" + run, "REGSHIFT_START_TIMEOUT=120"}}
	ports := freePorts(t, 4)
	switch {
	case kind == ZooKeeper:
		p.env = append(p.env, "REGSHIFT_ZK_PORT="+ports[0])
	case kind == Kafka && securePrefix != "":
		p.secure = filepath.Join(run, "kafka-secure")
		p.env = append(p.env, "REGSHIFT_KAFKA_PORT="+ports[0], "REGSHIFT_KAFKA_CONTROLLER_PORT="+ports[1],
			"REGSHIFT_KAFKA_SECURE=1", "REGSHIFT_KAFKA_SECURE_DIR="+p.secure, "REGSHIFT_KAFKA_TOPIC_PREFIX="+securePrefix)
	case kind == Kafka:
		p.env = append(p.env, "REGSHIFT_KAFKA_PORT="+ports[0], "REGSHIFT_KAFKA_CONTROLLER_PORT="+ports[1],
			"REGSHIFT_KAFKA_SASL_PORT="+ports[2], "REGSHIFT_KAFKA_SASL_PASSWORD="+PrivateSASLPassword)
		p.sasl = "127.0.0.1:" + ports[2]
	case kind == Consul:
		p.env = append(p.env, "REGSHIFT_CONSUL_HTTP_PORT="+ports[0], "REGSHIFT_CONSUL_SERVER_PORT="+ports[1],
			"REGSHIFT_CONSUL_SERF_LAN_PORT="+ports[2], "REGSHIFT_CONSUL_SERF_WAN_PORT="+ports[3])
	case kind == Etcd:
		p.env = append(p.env, "REGSHIFT_ETCD_PORT="+ports[0], "REGSHIFT_ETCD_PEER_PORT="+ports[1])
	case kind == Eureka:
		p.env = append(p.env, eurekaPrivateEnv(ports)...)
	default:
		t.Fatalf("servers: no private %s", kind)
	}
	p.addr = "127.0.0.1:" + ports[0]
	t.Cleanup(func() {
		p.Stop(t)
		if !t.Failed() {
			_ = os.RemoveAll(run)
		} else {
			t.Logf("private %s kept its logs in %s", kind, filepath.Join(run, "logs"))
		}
	})
	start := time.Now()
	p.Start(t)
	t.Logf("private %s answers at %s after %s (locked down: %v)", kind, p.addr, time.Since(start).Round(100*time.Millisecond), p.secure != "")
	return p
}

// Addr is the server's client address: Kafka's broker (SASL_SSL when
// locked down), ZooKeeper's client port, Consul's and Eureka's HTTP
// address, etcd's client URL's host:port.
func (p *Private) Addr() string { return p.addr }

// The SASL/PLAIN credentials of a private Kafka's SASL_PLAINTEXT listener.
const (
	PrivateSASLUser     = "regshift"
	PrivateSASLPassword = "regshift-secret"
)

// SASLAddr is a private Kafka's SASL_PLAINTEXT listener (PLAIN, user
// PrivateSASLUser, password PrivateSASLPassword).
func (p *Private) SASLAddr() string { return p.sasl }

// Kind names the server.
func (p *Private) Kind() Kind { return p.kind }

// Start (re)starts the server on the same ports and data and waits until it
// answers. Starting a running server does nothing.
func (p *Private) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.alive {
		return
	}
	if err := p.script("up"); err != nil {
		t.Fatalf("start private %s: %v", p.kind, err)
	}
	p.alive = true
}

// Stop stops the server gracefully (SIGTERM, then SIGKILL after 30s); its
// data stays for a later Start.
func (p *Private) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive {
		return
	}
	if err := p.script("down"); err != nil {
		t.Errorf("stop private %s: %v", p.kind, err)
	}
	p.alive = false
}

// Kill ends the server with SIGKILL, as a crash would; its data stays.
func (p *Private) Kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive {
		return
	}
	pidFile := filepath.Join(p.run, "pids", string(p.kind)+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("kill private %s: %v", p.kind, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("kill private %s: bad PID file: %v", p.kind, err)
	}
	proc, err := os.FindProcess(pid)
	if err == nil {
		_ = proc.Kill()
		_, _ = proc.Wait() // not our child: returns at once; the loop below waits
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = os.Remove(pidFile)
	p.alive = false
}

// Wipe deletes the data of a stopped server, so the next Start begins
// empty: a server that lost its disk (etcd's leases and keys, ZooKeeper's
// sessions and znodes).
func (p *Private) Wipe(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.alive {
		t.Fatalf("wipe private %s: stop it first", p.kind)
	}
	if err := os.RemoveAll(filepath.Join(p.run, "data")); err != nil {
		t.Fatalf("wipe private %s: %v", p.kind, err)
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A killed process that is nobody's child may linger as a zombie (state Z).
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func (p *Private) script(verb string) error {
	script, err := servicesScript()
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", script, verb, string(p.kind))
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/services.sh %s %s: %w\n%s", verb, p.kind, err, out)
	}
	return nil
}

// installed reports whether `make deps` installed what a private server of
// this kind runs from.
func installed(kind Kind) error {
	script, err := servicesScript()
	if err != nil {
		return err
	}
	deps := os.Getenv("REGSHIFT_DEPS_DIR")
	if deps == "" {
		deps = filepath.Join(filepath.Dir(filepath.Dir(script)), ".deps")
	}
	var need string
	switch kind {
	case ZooKeeper:
		need = "/usr/share/java/zookeeper.jar"
	case Kafka:
		need = filepath.Join(deps, "kafka", "libs")
	case Consul:
		need = filepath.Join(deps, "bin", "consul")
	case Etcd:
		need = filepath.Join(deps, "bin", "etcd")
	case Eureka:
		need = eurekaJar(deps)
	}
	if _, err := os.Stat(need); err != nil {
		return fmt.Errorf("%w: %s is not installed (run `make deps`): %w", ErrNotReachable, kind, err)
	}
	return nil
}

// servicesScript finds scripts/services.sh above the working directory
// (go test runs in the package's folder), or at REGSHIFT_ROOT.
func servicesScript() (string, error) {
	if root := os.Getenv("REGSHIFT_ROOT"); root != "" {
		return filepath.Join(root, "scripts", "services.sh"), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		s := filepath.Join(dir, "scripts", "services.sh")
		if _, err := os.Stat(s); err == nil {
			return s, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/services.sh not found above the working directory; set REGSHIFT_ROOT")
		}
		dir = parent
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := strconv.Atoi(freePorts(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ClosedAddr returns a loopback address nothing listens on (for tests of
// servers that are down).
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ls []net.Listener
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}
