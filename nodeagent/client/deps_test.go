package client_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// agent is the agent's own package, and heavyModules are the Kafka and
// registry clients it brings: an app must compile none of them to talk to
// its agent.
const agent = "github.com/regshift/regshift/nodeagent"

var heavyModules = []string{
	"github.com/segmentio/kafka-go",
	"github.com/hashicorp/consul",
	"github.com/go-zookeeper/zk",
	"github.com/twmb/franz-go",
}

// TestClientStaysLight lists the client's dependencies with `go list -deps`
// and fails on any heavy one, naming the import chain that brings it.
func TestClientStaysLight(t *testing.T) {
	const pkg = "github.com/regshift/regshift/nodeagent/client"
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	imports := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	if _, ok := imports[pkg]; !ok {
		t.Fatalf("go list -deps %s did not list the package itself:\n%s", pkg, out)
	}
	// Breadth first from the client: from[p] is the package that imports p
	// on a shortest chain.
	from := map[string]string{pkg: ""}
	for queue := []string{pkg}; len(queue) > 0; queue = queue[1:] {
		for _, dep := range imports[queue[0]] {
			if _, seen := from[dep]; !seen {
				from[dep] = queue[0]
				queue = append(queue, dep)
			}
		}
	}
	var chains []string
	for dep, by := range from {
		if !isHeavy(dep) || isHeavy(by) { // name only where a chain enters
			continue
		}
		var chain []string
		for p := dep; p != ""; p = from[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		chains = append(chains, strings.Join(chain, " -> "))
	}
	slices.Sort(chains)
	for _, c := range chains {
		t.Errorf("the client must not depend on the agent or its Kafka and registry clients: %s", c)
	}
}

func isHeavy(pkg string) bool {
	if pkg == agent {
		return true
	}
	for _, m := range heavyModules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return true
		}
	}
	return false
}
