package itest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/nodeagent"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary builds the regshift binary once per test process and returns its
// path (REGSHIFT_BIN names a prebuilt one instead).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REGSHIFT_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		var root []byte
		root, binErr = exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/regshift/regshift").Output()
		if binErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "regshift-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "regshift")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/regshift")
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("build regshift: %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Process is an agent running as its own OS process (`regshift agent`), so
// a test can kill it with SIGKILL as a crash would.
type Process struct {
	Node   string
	Config nodeagent.Config
	file   string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	mu     sync.Mutex
	t      testing.TB
}

// StartAgentProcess writes the agent's config and starts `regshift agent`.
func (e *Env) StartAgentProcess(t testing.TB, spec AgentSpec) *Process {
	t.Helper()
	cfg := e.AgentConfig(t, spec)
	// Another process cannot be handed a listener: it binds port 0 and
	// Start reads the address it logs.
	cfg.API.Listen = "127.0.0.1:0"
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.Dir, spec.Node+".yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Process{Node: spec.Node, Config: cfg, file: file, t: t}
	p.Start(t)
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("agent %s output:\n%s", p.Node, p.Output())
		}
	})
	return p
}

// Start starts the process (again) on the same config and state folder and
// waits for its local API.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	if p.log == nil {
		p.log = &bytes.Buffer{}
	}
	from := p.log.Len()
	cmd := exec.Command(Binary(t), "agent", "-c", p.file)
	cmd.Stdout, cmd.Stderr = syncWriter{&p.mu, p.log}, syncWriter{&p.mu, p.log}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		t.Fatalf("start agent %s: %v", p.Node, err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	Eventually(t, 30*time.Second, "agent "+p.Node+" API", func() error {
		m := listeningRE.FindStringSubmatch(p.Output()[from:])
		if m == nil {
			return fmt.Errorf("no \"local API listening\" line yet")
		}
		p.mu.Lock()
		p.Config.API.Listen = m[1]
		p.mu.Unlock()
		_, err := p.Client(t).Status(context.Background())
		return err
	})
}

// listeningRE finds the address an agent's local API bound in its log.
var listeningRE = regexp.MustCompile(`local API listening.*?addr"?[=:]"?([0-9.]+:[0-9]+)`)

// Kill ends the process with SIGKILL: no deregistration, no clean close.
func (p *Process) Kill(t testing.TB) { p.signal(t, syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a graceful stop) and waits.
func (p *Process) Stop(t testing.TB) { p.signal(t, syscall.SIGTERM) }

func (p *Process) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("agent %s did not stop within 30s of %v", p.Node, sig)
	}
}

// Client is the process's local API client.
func (p *Process) Client(t testing.TB) *clientT { return newClient(t, p.Config.API.Listen) }

// PID is the running process's id (0 when stopped).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Output is what the process wrote so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// ServiceID is the instance id of an offered service on this host.
func (p *Process) ServiceID(service string) string { return service + "-" + p.Node }

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}
