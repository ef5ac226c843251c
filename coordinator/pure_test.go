package coordinator

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCoreIsPure keeps the package what its doc says: no goroutines, no
// clock, no I/O. It reads the package's own source (tests excluded) and
// fails on a go statement, a call of time.Now, time.Since, time.Until,
// time.Sleep, time.After or time.Tick, or an import that does I/O, runs
// goroutines or reaches a transport.
func TestCoreIsPure(t *testing.T) {
	banned := map[string]bool{"os": true, "net": true, "net/http": true, "sync": true, "sync/atomic": true,
		"context": true, "log": true, "log/slog": true, "github.com/regshift/regshift/events": true,
		"github.com/segmentio/kafka-go": true}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "Tick": true,
		"NewTimer": true, "NewTicker": true, "AfterFunc": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); banned[path] || strings.HasPrefix(path, "github.com/regshift/regshift/coordinator/") {
				t.Errorf("%s imports %s", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s starts a goroutine", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clock[n.Sel.Name] {
					t.Errorf("%s reads the clock: time.%s", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
