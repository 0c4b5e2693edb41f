package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type compose struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeRunsEveryRoleWithTheConfigurationItNeeds reads the root
// docker-compose.yml and checks each vrsky role gets the VRSKY_ variables
// the role refuses to start without.
func TestComposeRunsEveryRoleWithTheConfigurationItNeeds(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var c compose
	require.NoError(t, yaml.Unmarshal(b, &c))

	needs := map[string][]string{
		"api":     {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT"},
		"worker":  {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT"},
		"runner":  {"VRSKY_NATS_URL", "VRSKY_S3_ENDPOINT", "VRSKY_FILE_ROOT"},
		"migrate": {"VRSKY_DATABASE_URL"},
	}
	for role, vars := range needs {
		svc, ok := c.Services[role]
		require.True(t, ok, "service %s", role)
		require.NotNil(t, svc.Build, "%s is built from this repository", role)
		require.NotEmpty(t, svc.Command)
		require.Contains(t, []string{"api", "worker", "runner", "migrate"}, svc.Command[0])
		for _, v := range vars {
			require.NotEmpty(t, svc.Environment[v], "%s needs %s", role, v)
		}
	}
	for _, infra := range []string{"postgres", "nats", "temporal", "minio"} {
		require.Contains(t, c.Services, infra)
		require.NotEmpty(t, c.Services[infra].Image)
	}
	require.True(t, slices.Contains(c.Services["postgres"].Command, "wal_level=logical"), "CDC needs logical replication")
}

// TestComposeGivesEachTenantItsOwnNATSAccount: the NATS server trusts the
// operator whose keys the roles hold, so every tenant gets its own account.
func TestComposeGivesEachTenantItsOwnNATSAccount(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var c compose
	require.NoError(t, yaml.Unmarshal(b, &c))

	keys := c.Services["nats-keys"]
	require.NotNil(t, keys.Build)
	require.Equal(t, "nats-config", keys.Command[0])
	keysFile := keys.Command[slices.Index(keys.Command, "-keys")+1]
	conf := keys.Command[slices.Index(keys.Command, "-out")+1]
	require.Contains(t, keys.Volumes, "nats-keys:/keys")

	nats := c.Services["nats"]
	require.Equal(t, conf, nats.Command[slices.Index(nats.Command, "-c")+1], "the server reads the written configuration")
	require.Contains(t, nats.Volumes, "nats-keys:/keys:ro")
	require.Contains(t, nats.DependsOn, "nats-keys")

	for _, role := range []string{"api", "worker", "runner"} {
		svc := c.Services[role]
		require.Equal(t, keysFile, svc.Environment["VRSKY_NATS_KEYS_FILE"], role)
		require.Contains(t, svc.Volumes, "nats-keys:/keys:ro", role)
	}
}

func TestDockerfileBuildsTheBinaryWithThePinnedToolchain(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	require.Contains(t, string(b), "GOTOOLCHAIN=go1.27.3")
	require.Contains(t, string(b), "./cmd/vrsky")
	require.Contains(t, string(b), "--chown=nonroot:nonroot /out/keys /keys", "the roles (nonroot) own the keys volume")
}
