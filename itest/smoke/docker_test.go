package smoke

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/regshift/regshift/itest/servers"
)

// baseImage is the Debian image `make deps` builds with debootstrap.
func baseImage() string {
	if v := os.Getenv("REGSHIFT_BASE_IMAGE"); v != "" {
		return v
	}
	return "regshift/debian-base:bookworm"
}

func hostNetwork(hc *container.HostConfig) { hc.NetworkMode = "host" }

// TestDockerBuildsAndRunsLocalImage builds a FROM-scratch image around a
// static Go program, runs it with host networking through testcontainers-go
// and talks to it on 127.0.0.1.
func TestDockerBuildsAndRunsLocalImage(t *testing.T) {
	servers.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "pingserver"), "./testdata/pingserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pingserver: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY pingserver /pingserver\nENTRYPOINT [\"/pingserver\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}

	port := servers.FreePort(t)
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			FromDockerfile: testcontainers.FromDockerfile{
				Context: dir, Repo: "regshift/smoke-pingserver", Tag: "test", KeepImage: true,
			},
			Env:                map[string]string{"PING_PORT": strconv.Itoa(port), "PING_TOKEN": token},
			HostConfigModifier: hostNetwork,
			WaitingFor:         wait.ForLog("pingserver listening").WithStartupTimeout(60 * time.Second),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start container from locally built image: %v", err)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", port))
	if err != nil {
		t.Fatalf("call the container on the host network: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "pong "+token {
		t.Fatalf("container answered %q, want %q", body, "pong "+token)
	}
}

// TestDockerRunsDebianBaseImage runs the debootstrapped base image that later
// images build FROM and checks it is the Debian release it claims to be.
func TestDockerRunsDebianBaseImage(t *testing.T) {
	servers.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:              baseImage(),
			Cmd:                []string{"cat", "/etc/debian_version"},
			HostConfigModifier: hostNetwork,
			WaitingFor:         wait.ForExit().WithExitTimeout(60 * time.Second),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("run %s (built by `make deps`): %v", baseImage(), err)
	}
	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer logs.Close()
	out, _ := io.ReadAll(logs)
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "12.") {
		t.Fatalf("%s reports Debian %q, want bookworm (12.x)", baseImage(), v)
	}
}
