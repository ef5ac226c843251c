package zookeeper_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

// TestCuratorInterop runs a real Java client, Apache Curator 5.7.1's
// curator-x-discovery with a Spring-Cloud-Zookeeper-shaped payload class
// (testdata/curator-interop), against the real ZooKeeper: it must read what
// regshift registered, and regshift must read what it registers.
func TestCuratorInterop(t *testing.T) {
	addrs := servers.RequireZooKeeper(t)
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " is not installed; the Curator interop test needs Java 17 and Maven (make deps)"
			if servers.Required() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	target := t.TempDir()
	build := exec.Command("mvn", "-q", "-B", "-f", filepath.Join("testdata", "curator-interop", "pom.xml"),
		"-Dinterop.target="+target, "package", "dependency:copy-dependencies", "-DoutputDirectory="+filepath.Join(target, "libs"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Curator client: %v\n%s", err, out)
	}

	cfg := zookeeper.DefaultConfig(addrs...)
	cfg.BasePath = "/" + registrytest.Unique("regshift-interop") + "/services"
	c := newClient(t, cfg)
	svc := registrytest.Unique("orders")
	ours := registries.Instance{Service: svc, ID: "go-1", Address: "10.1.1.1", Port: 8080,
		Tags: []string{"v1"}, Metadata: map[string]string{"zone": "a", "lang": "go"}}
	if err := c.Register(context.Background(), ours); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	java := exec.CommandContext(ctx, "java", "-cp", filepath.Join(target, "classes")+":"+filepath.Join(target, "libs", "*"),
		"interop.Main", strings.Join(addrs, ","), cfg.BasePath, svc)
	stdin, err := java.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := java.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	java.Stderr = java.Stdout
	if err := java.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = java.Wait() }()

	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "REGISTERED") {
		lines = append(lines, sc.Text())
	}
	want := "READ go-1 10.1.1.1:8080 meta={lang=go, zone=a} uri=http://10.1.1.1:8080"
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("Curator read %q, want [%q]", lines, want)
	}
	javaInst := registries.Instance{Service: svc, ID: "java-1", Address: "10.9.9.9", Port: 9999,
		Metadata: map[string]string{"lang": "java"}}
	registrytest.ResolvesTo(t, c, svc, []registries.Instance{ours, javaInst})
}
