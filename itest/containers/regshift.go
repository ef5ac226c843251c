package containers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"
	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/nodeagent/client"
)

// File is a file put into a container before it starts.
type File struct {
	Path     string // in the container
	Content  []byte // or HostPath
	HostPath string
	Mode     int64 // default 0o644
}

// Coordinator is `regshift coordinator` in a container.
type Coordinator struct {
	*Container
	API string // http://<listen>
}

// CoordinatorConfigPath is where StartCoordinator puts the config.
const CoordinatorConfigPath = "/etc/regshift/coordinator.yaml"

// StartCoordinator runs `regshift coordinator -c` with cfgYAML (see
// docs/operating.md; its listen address must be on 127.0.0.1) and files
// (its signing key, packages for packagesDir, ...), and waits until its API
// answers /healthz.
func StartCoordinator(t testing.TB, cfgYAML string, files ...File) *Coordinator {
	t.Helper()
	var cfg struct {
		Listen string `yaml:"listen"`
	}
	if err := yaml.Unmarshal([]byte(cfgYAML), &cfg); err != nil || cfg.Listen == "" {
		t.Fatalf("coordinator config: want a listen address (%v)", err)
	}
	c := &Coordinator{API: "http://" + cfg.Listen}
	c.Container = run(t, "coordinator", regshiftRequest(cfgYAML, CoordinatorConfigPath, files, "coordinator"),
		func(ctx context.Context) error { return get(ctx, c.API+"/healthz") })
	return c
}

// Agent is `regshift agent` in a container.
type Agent struct {
	*Container
	Node string
	API  string // http://<api.listen>
}

// AgentConfigPath is where StartAgent puts the config.
const AgentConfigPath = "/etc/regshift/agent.yaml"

// StartAgent runs `regshift agent -c` with cfgYAML (docs/agent.md; api.listen
// must be a loopback address) and files (the trusted keys, ...), and waits
// until its local API answers /v1/status.
func StartAgent(t testing.TB, cfgYAML string, files ...File) *Agent {
	t.Helper()
	var cfg struct {
		Node string `yaml:"node"`
		API  struct {
			Listen string `yaml:"listen"`
		} `yaml:"api"`
	}
	if err := yaml.Unmarshal([]byte(cfgYAML), &cfg); err != nil || cfg.API.Listen == "" || strings.HasPrefix(cfg.API.Listen, "unix:") {
		t.Fatalf("agent config: want node and a TCP api.listen (%v)", err)
	}
	a := &Agent{Node: cfg.Node, API: "http://" + cfg.API.Listen}
	a.Container = run(t, "agent "+cfg.Node, regshiftRequest(cfgYAML, AgentConfigPath, files, "agent"),
		func(ctx context.Context) error { return get(ctx, a.API+"/v1/status") })
	return a
}

// Client is a client of the agent's local API, as the host's apps use it.
func (a *Agent) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(strings.TrimPrefix(a.API, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func regshiftRequest(cfgYAML, cfgPath string, files []File, command string) testcontainers.ContainerRequest {
	req := testcontainers.ContainerRequest{
		Image: DefaultImages().Regshift,
		Cmd:   []string{command, "-c", cfgPath},
		Files: []testcontainers.ContainerFile{{Reader: strings.NewReader(cfgYAML), ContainerFilePath: cfgPath, FileMode: 0o600}},
	}
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		cf := testcontainers.ContainerFile{HostFilePath: f.HostPath, ContainerFilePath: f.Path, FileMode: mode}
		if f.Content != nil {
			cf.Reader = strings.NewReader(string(f.Content))
		}
		req.Files = append(req.Files, cf)
	}
	return req
}

func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
