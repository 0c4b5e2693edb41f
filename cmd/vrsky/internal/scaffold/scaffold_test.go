package scaffold

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryKindScaffoldsAPackageWhoseTestsPass generates each kind inside
// the module (so its imports resolve), runs its tests, and removes it.
func TestEveryKindScaffoldsAPackageWhoseTestsPass(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles generated packages")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "connectors"))
	require.NoError(t, err)
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			dir, err := Generate(Options{Name: "zz-scaffold-" + kind, Kind: kind, Dir: root})
			require.NoError(t, err)
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			cmd := exec.Command("go", "test", "-count=1", ".")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))

			_, err = Generate(Options{Name: "zz-scaffold-" + kind, Kind: kind, Dir: root})
			require.ErrorContains(t, err, "already exists", "never overwrites")
		})
	}
}

func TestGenerateRejectsBadNamesAndKinds(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "A", "1abc", "../evil", "a_b", "x"} {
		_, err := Generate(Options{Name: name, Kind: "producer", Dir: dir})
		require.Error(t, err, name)
	}
	_, err := Generate(Options{Name: "okname", Kind: "teleporter", Dir: dir})
	require.ErrorContains(t, err, "want one of")
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries, "nothing written on error")
}
