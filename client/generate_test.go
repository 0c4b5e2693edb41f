package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedCodeIsCurrent regenerates the client from ui/openapi.json
// into a temporary directory, as `go generate ./client` does, and fails
// when client.gen.go differs: the API changed and the client was not
// regenerated.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator")
	}
	out := filepath.Join(t.TempDir(), "client.gen.go")
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "-o", out, "../ui/openapi.json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "run the generator: %s", stderr.String())
	fresh, err := os.ReadFile(out)
	require.NoError(t, err)
	committed, err := os.ReadFile("client.gen.go")
	require.NoError(t, err)
	if !bytes.Equal(fresh, committed) {
		t.Fatal("client/client.gen.go is not what ui/openapi.json generates: run `go generate ./client` " +
			"(after `go test ./ui -run OpenAPI -update` when the API changed) and commit the result")
	}
}
