package logging

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// logMethods are the slog.Logger methods (and slog's functions of the same
// names) that take key/value pairs.
var logMethods = map[string]bool{
	"Debug": true, "Info": true, "Warn": true, "Error": true,
	"DebugContext": true, "InfoContext": true, "WarnContext": true, "ErrorContext": true,
	"Log": true, "LogAttrs": true, "With": true,
}

// attrFuncs are slog's Attr constructors, whose first argument is a key.
var attrFuncs = map[string]bool{
	"Any": true, "String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
	"Bool": true, "Time": true, "Duration": true, "Group": true,
}

// repoRoot is the directory holding the root go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "vrsky")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no repository root above the test")
		dir = parent
	}
}

// errKeys returns the places in src where a slog call uses the key "err".
func errKeys(t *testing.T, name string, src []byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	require.NoError(t, err, name)
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		var args []ast.Expr
		switch {
		case attrFuncs[sel.Sel.Name] && isIdent(sel.X, "slog") && len(call.Args) > 0:
			args = call.Args[:1]
		case logMethods[sel.Sel.Name]:
			args = call.Args
		}
		for _, a := range args {
			if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && v == "err" {
					found = append(found, fset.Position(lit.Pos()).String())
				}
			}
		}
		return true
	})
	return found
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// TestErrorKeyIsAlwaysError: every slog call in the repository logs an
// error under "error", never "err", so that one query finds them all.
func TestErrorKeyIsAlwaysError(t *testing.T) {
	root := repoRoot(t)
	var found []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", "vendor", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		found = append(found, errKeys(t, path, src)...)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 100, "the whole repository was scanned")
	require.Empty(t, found, `slog calls must log errors under "error", not "err"`)
}

func TestErrKeysFindsEveryForm(t *testing.T) {
	src := `package x
import "log/slog"
func f(log *slog.Logger, err error) {
	log.Info("a", "err", err)
	log.ErrorContext(nil, "b", "stage", 1, "err", err)
	log.With("err", err).Info("c")
	slog.Warn("d", "err", err)
	log.LogAttrs(nil, slog.LevelInfo, "e", slog.Any("err", err))
	log.Info("fine", "error", err, "value", "err is a word")
	fmt.Println("err")
	slog.String("key", "err")
}`
	found := errKeys(t, "x.go", []byte(src))
	require.Len(t, found, 5, "%v", found)
}
