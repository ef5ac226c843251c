package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/regshift/regshift/itest/servers"
)

// StartTimeout bounds how long Start waits for a part to answer.
const StartTimeout = 2 * time.Minute

// Container is one running part: a container on the host network and the
// probe that says it answers.
type Container struct {
	Name  string // what it is, for messages: "kafka", "agent p1", ...
	c     testcontainers.Container
	ready func(context.Context) error
}

// ID is the Docker container id.
func (c *Container) ID() string { return c.c.GetContainerID() }

// run creates and starts a container from req on the host network, removes
// it with the test, and waits until ready answers.
func run(t testing.TB, name string, req testcontainers.ContainerRequest, ready func(context.Context) error) *Container {
	t.Helper()
	c, err := tryRun(t, name, req, ready)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errPortTaken: the part exited at start because a port was taken (a free
// port picked earlier was grabbed meanwhile, e.g. as another connection's
// source port). Helpers that picked their ports retry with new ones.
var errPortTaken = errors.New("a port was taken")

// runRetrying is run for parts whose ports pick picks: when one is taken by
// the time the part binds it, it tries again with new ports.
func runRetrying(t testing.TB, name string, pick func() testcontainers.ContainerRequest, ready func(context.Context) error) *Container {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryRun(t, name, pick(), ready)
		if err == nil {
			return c
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%s: %v; again with other ports", name, err)
	}
}

func tryRun(t testing.TB, name string, req testcontainers.ContainerRequest, ready func(context.Context) error) (*Container, error) {
	t.Helper()
	requireDocker(t)
	req.HostConfigModifier = func(hc *container.HostConfig) { hc.NetworkMode = "host" }
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	tc, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(t, tc)
	c := &Container{Name: name, c: tc, ready: ready}
	if err != nil {
		return c, fmt.Errorf("start %s (image %s; build it with `make images`): %w", name, req.Image, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs (last 60 lines):\n%s", name, c.Logs(60))
		}
	})
	return c, c.wait()
}

// requireDocker checks the Docker engine and sets testcontainers' variables
// (servers.RequireDocker) unless that was done already: it sets them with
// t.Setenv, which must not run from helpers started in parallel (StartStack
// calls it first).
func requireDocker(t testing.TB) {
	t.Helper()
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "true" && os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") != "" && os.Getenv("DOCKER_HOST") != "" {
		return
	}
	servers.RequireDocker(t)
}

func (c *Container) await(t testing.TB) {
	t.Helper()
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
}

// wait polls ready until it answers, the container exits, or StartTimeout.
func (c *Container) wait() error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		err := c.ready(ctx)
		if err == nil {
			return nil
		}
		if st, serr := c.c.State(ctx); serr == nil && !st.Running {
			logs := c.Logs(40)
			if strings.Contains(strings.ToLower(logs), "address already in use") {
				return fmt.Errorf("%s exited at start: %w\n%s", c.Name, errPortTaken, logs)
			}
			return fmt.Errorf("%s exited at start (%s, code %d): %v\n%s", c.Name, st.Status, st.ExitCode, err, logs)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer within %s: %v\n%s", c.Name, StartTimeout, err, c.Logs(40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops the container gracefully (SIGTERM, SIGKILL after 10 s).
func (c *Container) Stop(t testing.TB) {
	t.Helper()
	timeout := 10 * time.Second
	if err := c.c.Stop(context.Background(), &timeout); err != nil {
		t.Fatalf("stop %s: %v", c.Name, err)
	}
}

// Kill kills the container's process with SIGKILL: no goodbye.
func (c *Container) Kill(t testing.TB) {
	t.Helper()
	dc, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer dc.Close()
	if _, err := dc.ContainerKill(context.Background(), c.ID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("kill %s: %v", c.Name, err)
	}
	// Wait until Docker reports it exited, so a Start that follows restarts it.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.c.State(context.Background())
		if err == nil && !st.Running {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still runs 30 s after SIGKILL", c.Name)
}

// Start starts a stopped or killed container again (same file system: data
// and state survive) and waits until it answers.
func (c *Container) Start(t testing.TB) {
	t.Helper()
	if err := c.c.Start(context.Background()); err != nil {
		t.Fatalf("start %s: %v", c.Name, err)
	}
	c.await(t)
}

// Restart is Stop then Start.
func (c *Container) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.Start(t)
}

// Logs returns the last n lines the container wrote (all of them when n <= 0).
func (c *Container) Logs(n int) string {
	if c.c == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
