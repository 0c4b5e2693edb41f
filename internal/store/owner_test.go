package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sqlMethods are the pgx calls that run SQL.
var sqlMethods = map[string]bool{
	"Exec": true, "Query": true, "QueryRow": true, "CopyFrom": true, "SendBatch": true, "BeginFunc": true, "BeginTxFunc": true,
}

// otherDatabases are the packages that run SQL on databases that are not
// VRSky's metadata: the tenants' own databases, the test and cluster
// set-up. Everything else goes through the store.
var otherDatabases = map[string]string{
	"internal/store":           "the one owner of VRSky's metadata",
	"internal/dbmigrate":       "the schema migrations",
	"migrations":               "the schema migrations",
	"connectors/postgres":      "writes to the tenant's own database",
	"connectors/postgrescdc":   "reads the tenant's own database's changes",
	"cmd/vrsky/internal/bench": "the benchmark's source and sink databases",
	"cmd/vrsky/internal/demo":  "the demo's source and sink databases",
	"internal/pgcluster":       "creates the private cluster and its database",
	"internal/testenv":         "creates the tests' databases",
}

// TestOnlyTheStoreQueriesVRSkysDatabase: every query on VRSky's own
// tables goes through the store, which keeps the rule that every query
// filters by tenant in one place. It fails when a package's code outside
// the list above calls a pgx method that runs SQL.
func TestOnlyTheStoreQueriesVRSkysDatabase(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the module root")
	var offenders []string
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if _, ok := otherDatabases[filepath.ToSlash(rel)]; ok {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		checked++
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pgx := importsPgx(file)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sqlMethods[sel.Sel.Name] && (pgx || sqlText(call)) {
				offenders = append(offenders, rel+": "+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, checked, 100, "the walk saw the module's code")
	require.Empty(t, offenders, "SQL outside internal/store: add a store method instead")
}

// sqlText reports whether call's second argument (after the context) is a
// string literal: a query, on a connection declared elsewhere.
func sqlText(call *ast.CallExpr) bool {
	if len(call.Args) < 2 {
		return false
	}
	lit, ok := call.Args[1].(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}

// importsPgx reports whether file imports pgx, whose calls run SQL.
func importsPgx(file *ast.File) bool {
	for _, imp := range file.Imports {
		if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "github.com/jackc/pgx/") {
			return true
		}
	}
	return false
}
