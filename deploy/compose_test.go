package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// composeEnv is what an operator sets before `docker compose up`
// (deploy/README.md).
var composeEnv = []string{
	"VRSKY_ADMIN_KEY_SHA256=" + strings.Repeat("ab", 32),
	"VRSKY_SECRETS_KEY=" + strings.Repeat("A", 43) + "=",
}

// loadCompose loads a compose file as `docker compose config` does: the
// compose-spec loader with interpolation, normalisation and the
// consistency checks, in the repository root.
func loadCompose(t *testing.T, path string, env []string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(root),
		cli.WithName("vrsky"),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

var (
	projectOnce sync.Once
	project     *types.Project
	projectErr  error
)

func rootCompose(t *testing.T) *types.Project {
	projectOnce.Do(func() { project, projectErr = loadCompose(t, filepath.Join("..", "docker-compose.yml"), composeEnv) })
	require.NoError(t, projectErr)
	return project
}

var roles = []string{"api", "worker", "runner"}

// oneShot reports whether a service runs to completion: restart "no" and
// another service waits for it with service_completed_successfully.
func oneShot(p *types.Project, name string) bool {
	if p.Services[name].Restart != types.RestartPolicyNo {
		return false
	}
	for _, s := range p.Services {
		if d, ok := s.DependsOn[name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
			return true
		}
	}
	return false
}

// TestComposeLoadsWithTheSpecLoader: the file is valid compose and refuses
// to load without the admin key hash and the secrets key.
func TestComposeLoadsWithTheSpecLoader(t *testing.T) {
	p := rootCompose(t)
	require.Contains(t, p.ServiceNames(), "api")
	for _, missing := range []string{"VRSKY_ADMIN_KEY_SHA256", "VRSKY_SECRETS_KEY"} {
		var env []string
		for _, kv := range composeEnv {
			if !strings.HasPrefix(kv, missing+"=") {
				env = append(env, kv)
			}
		}
		_, err := loadCompose(t, filepath.Join("..", "docker-compose.yml"), env)
		require.ErrorContains(t, err, missing, "compose must refuse to start without %s", missing)
	}
}

// TestComposeServicesAreHealthCheckedOrOneShot: every long-running service
// has a healthcheck and a restart policy; the rest are one-shots.
func TestComposeServicesAreHealthCheckedOrOneShot(t *testing.T) {
	p := rootCompose(t)
	for name, s := range p.Services {
		if oneShot(p, name) {
			require.Nil(t, s.HealthCheck, "%s runs once; it needs no healthcheck", name)
			continue
		}
		require.NotNil(t, s.HealthCheck, "%s has no healthcheck", name)
		require.False(t, s.HealthCheck.Disable, name)
		require.NotEmpty(t, s.HealthCheck.Test, name)
		require.Contains(t, []string{"CMD", "CMD-SHELL"}, s.HealthCheck.Test[0], name)
		require.Equal(t, types.RestartPolicyUnlessStopped, s.Restart, "%s restarts", name)
	}
	for _, name := range []string{"migrate", "nats-keys", "temporal-schema", "temporal-namespace"} {
		require.True(t, oneShot(p, name), "%s is a one-shot others wait for", name)
	}
}

// TestComposeStartupOrder: no cycles, every dependency waits for health or
// completion, and no role starts before PostgreSQL, the NATS nodes,
// Temporal (with its namespace) and MinIO are healthy and the migrations
// have run.
func TestComposeStartupOrder(t *testing.T) {
	p := rootCompose(t)
	var order []string
	var mu sync.Mutex
	err := graph.InDependencyOrder(context.Background(), p, func(_ context.Context, name string, _ types.ServiceConfig) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, name)
		return nil
	})
	require.NoError(t, err, "the dependency graph has no cycle")
	require.Len(t, order, len(p.Services))

	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			require.Contains(t, p.Services, dep, "%s depends on a service that does not exist", name)
			want := types.ServiceConditionHealthy
			if oneShot(p, dep) {
				want = types.ServiceConditionCompletedSuccessfully
			}
			require.Equal(t, want, d.Condition, "%s waits for %s", name, dep)
			require.Less(t, slices.Index(order, dep), slices.Index(order, name), "%s starts after %s", name, dep)
		}
	}
	needs := map[string]string{
		"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully,
		"nats-1": types.ServiceConditionHealthy, "nats-2": types.ServiceConditionHealthy, "nats-3": types.ServiceConditionHealthy,
		"temporal": types.ServiceConditionHealthy, "temporal-namespace": types.ServiceConditionCompletedSuccessfully,
		"minio": types.ServiceConditionHealthy,
	}
	for _, role := range roles {
		for dep, cond := range needs {
			d, ok := p.Services[role].DependsOn[dep]
			require.True(t, ok, "%s waits for %s", role, dep)
			require.Equal(t, cond, d.Condition, "%s waits for %s", role, dep)
		}
	}
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, p.Services["temporal"].DependsOn["temporal-schema"].Condition)
	require.Equal(t, types.ServiceConditionHealthy, p.Services["migrate"].DependsOn["postgres"].Condition)
	require.Equal(t, types.ServiceConditionHealthy, p.Services["traefik"].DependsOn["api"].Condition)
}

var pinnedTag = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*$`)

// TestComposeImagesArePinned: every image names a version, never latest;
// the rest are built from this repository.
func TestComposeImagesArePinned(t *testing.T) {
	p := rootCompose(t)
	for name, s := range p.Services {
		if s.Image == "" || s.Build != nil {
			require.NotNil(t, s.Build, "%s has neither image nor build", name)
			continue
		}
		require.Regexp(t, pinnedTag, s.Image, "%s: image pinned to a version", name)
		require.NotContains(t, s.Image, ":latest", name)
		// A major or minor version alone ("postgres:15", "nats:2.12")
		// moves under the operator. PostgreSQL numbers its releases
		// major.minor, MinIO by date.
		repo, tag, _ := strings.Cut(s.Image, ":")
		dots := 2
		if repo == "postgres" {
			dots = 1
		}
		require.True(t, strings.Count(tag, ".") >= dots || strings.HasPrefix(tag, "RELEASE."), "%s: %s is not a full release", name, s.Image)
	}
	require.Equal(t, "temporalio/server", strings.Split(p.Services["temporal"].Image, ":")[0], "not the deprecated auto-setup image")
}

// TestComposeRunsEveryRoleWithTheConfigurationItNeeds: each vrsky role gets
// the VRSKY_ variables the role refuses to start without.
func TestComposeRunsEveryRoleWithTheConfigurationItNeeds(t *testing.T) {
	p := rootCompose(t)
	needs := map[string][]string{
		"api":     {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT", "VRSKY_ADMIN_KEY_SHA256", "VRSKY_ADMIN_ADDR", "VRSKY_SECRETS_KEY"},
		"worker":  {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT", "VRSKY_NATS_MONITOR_URLS"},
		"runner":  {"VRSKY_NATS_URL", "VRSKY_S3_ENDPOINT", "VRSKY_FILE_ROOT", "VRSKY_SECRETS_KEY"},
		"migrate": {"VRSKY_DATABASE_URL"},
	}
	for role, vars := range needs {
		svc, ok := p.Services[role]
		require.True(t, ok, "service %s", role)
		require.NotNil(t, svc.Build, "%s is built from this repository", role)
		require.NotEmpty(t, svc.Command)
		require.Equal(t, role, svc.Command[0])
		for _, v := range vars {
			val := svc.Environment[v]
			require.NotNil(t, val, "%s needs %s", role, v)
			require.NotEmpty(t, *val, "%s needs %s", role, v)
		}
	}
	require.Equal(t, strings.Repeat("ab", 32), *p.Services["api"].Environment["VRSKY_ADMIN_KEY_SHA256"], "the hash comes from the operator's environment")
	for _, infra := range []string{"postgres", "nats-1", "nats-2", "nats-3", "temporal", "minio"} {
		require.NotEmpty(t, p.Services[infra].Image, infra)
	}
	require.Contains(t, p.Services["postgres"].Command, "wal_level=logical", "CDC needs logical replication")
	// The runners' NATS URL lists every node, so a node's loss is survived.
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		require.Contains(t, *p.Services["runner"].Environment["VRSKY_NATS_URL"], "nats://"+n+":4222")
		require.Equal(t, "3", *p.Services["runner"].Environment["VRSKY_NATS_REPLICAS"])
		require.Contains(t, *p.Services["worker"].Environment["VRSKY_NATS_MONITOR_URLS"], "http://"+n+":8222")
	}
}

// TestComposeNATSIsAThreeNodeClusterInOperatorMode: each node routes to the
// two others and includes the trust block `vrsky nats-config` writes; the
// roles hold the keys of the same operator.
func TestComposeNATSIsAThreeNodeClusterInOperatorMode(t *testing.T) {
	p := rootCompose(t)
	keys := p.Services["nats-keys"]
	require.NotNil(t, keys.Build)
	require.Equal(t, "nats-config", keys.Command[0])
	keysFile := keys.Command[slices.Index(keys.Command, "-keys")+1]
	conf := keys.Command[slices.Index(keys.Command, "-out")+1]
	require.True(t, hasVolume(keys, "nats-keys", "/keys", false))

	nodes := []string{"nats-1", "nats-2", "nats-3"}
	for _, n := range nodes {
		s := p.Services[n]
		require.Equal(t, []string{"-c", "/etc/nats/node.conf"}, []string(s.Command), n)
		require.True(t, hasVolume(s, "nats-keys", "/etc/nats/keys", true), "%s reads the keys volume", n)
		require.True(t, hasVolume(s, n, "/data", false), "%s has its own storage", n)
		require.Len(t, s.Configs, 1, n)
		require.Equal(t, "/etc/nats/node.conf", s.Configs[0].Target)
		c := p.Configs[s.Configs[0].Source]
		require.Contains(t, c.Content, "server_name: "+n)
		require.Contains(t, c.Content, "jetstream {")
		require.Contains(t, c.Content, "http: 0.0.0.0:8222")
		// include is relative to node.conf: keys/nats.conf is the file
		// nats-config writes into the keys volume.
		require.Equal(t, "/keys/nats.conf", conf)
		require.Contains(t, c.Content, `include "keys/nats.conf"`)
		for _, peer := range nodes {
			if peer != n {
				require.Contains(t, c.Content, "nats://"+peer+":6222", "%s routes to %s", n, peer)
			}
		}
	}
	for _, role := range roles {
		svc := p.Services[role]
		require.Equal(t, keysFile, *svc.Environment["VRSKY_NATS_KEYS_FILE"], role)
		require.True(t, hasVolume(svc, "nats-keys", "/keys", true), role)
	}
}

func hasVolume(s types.ServiceConfig, source, target string, readOnly bool) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == source && v.Target == target && v.ReadOnly == readOnly {
			return true
		}
	}
	return false
}

// TestComposeReferencesExist: every bind-mounted file or directory exists
// in the repository, every named volume and config is declared, and the
// observability services get the files this folder provides.
func TestComposeReferencesExist(t *testing.T) {
	p := rootCompose(t)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if v.Source == "/var/run/docker.sock" {
					require.Equal(t, "alloy", name, "only Alloy reads the Docker API")
					require.True(t, v.ReadOnly)
					continue
				}
				rel, err := filepath.Rel(root, v.Source)
				require.NoError(t, err)
				require.False(t, strings.HasPrefix(rel, ".."), "%s mounts %s from outside the repository", name, v.Source)
				_, err = os.Stat(v.Source)
				require.NoError(t, err, "%s mounts %s", name, rel)
				require.True(t, v.ReadOnly, "%s mounts %s read-only", name, rel)
			case types.VolumeTypeVolume:
				require.Contains(t, p.Volumes, v.Source, "%s uses an undeclared volume", name)
			}
		}
		for _, c := range s.Configs {
			require.Contains(t, p.Configs, c.Source, "%s uses an undeclared config", name)
		}
	}
	mounts := func(service, file string) {
		for _, v := range p.Services[service].Volumes {
			if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, file) {
				return
			}
		}
		t.Errorf("%s does not mount %s", service, file)
	}
	mounts("prometheus", "deploy/prometheus/prometheus.yml")
	mounts("prometheus", "deploy/helm/vrsky/files/alerts.yaml")
	mounts("grafana", "deploy/grafana/provisioning")
	mounts("grafana", "deploy/helm/vrsky/files/dashboards")
	mounts("alloy", "deploy/alloy/config.alloy")
	mounts("traefik", "deploy/traefik/traefik.yml")
	mounts("traefik", "deploy/traefik/dynamic.yml")
}

// TestPrometheusScrapesEveryRole: the scrape jobs are vrsky-<role>, which
// the alert rules and dashboards select, on the roles' metrics listeners.
func TestPrometheusScrapesEveryRole(t *testing.T) {
	b, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	for _, want := range []string{"job_name: vrsky-api", `"api:9090"`, "job_name: vrsky-worker", `"worker:9090"`, "job_name: vrsky-runner", `names: ["runner"]`, "/etc/prometheus/rules/*.yaml"} {
		require.Contains(t, string(b), want)
	}
	p := rootCompose(t)
	require.Equal(t, "0.0.0.0:9090", *p.Services["api"].Environment["VRSKY_ADMIN_ADDR"])
	for _, role := range []string{"worker", "runner"} {
		require.Equal(t, "0.0.0.0:9090", *p.Services[role].Environment["VRSKY_HTTP_ADDR"])
	}
}

// TestComposeRefusesBrokenFiles: the loader used above does reject what
// docker compose would reject, so the checks mean something.
func TestComposeRefusesBrokenFiles(t *testing.T) {
	cases := map[string]string{
		"undeclared volume":  "services:\n  a:\n    image: x:1.0.0\n    volumes: [nope:/data]\n",
		"unknown dependency": "services:\n  a:\n    image: x:1.0.0\n    depends_on: { b: { condition: service_healthy } }\n",
		"unknown field":      "services:\n  a:\n    image: x:1.0.0\n    helthcheck: {}\n",
		"cycle":              "services:\n  a:\n    image: x:1.0.0\n    depends_on: [b]\n  b:\n    image: x:1.0.0\n    depends_on: [a]\n",
		"not yaml":           "services: [\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compose.yml")
			require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
			p, err := loadCompose(t, path, nil)
			if err == nil {
				err = graph.InDependencyOrder(context.Background(), p, func(context.Context, string, types.ServiceConfig) error { return nil })
			}
			require.Error(t, err)
		})
	}
}

func TestDockerfileBuildsTheBinaryWithThePinnedToolchain(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	require.Contains(t, string(b), "GOTOOLCHAIN=go1.27.3")
	require.Contains(t, string(b), "./cmd/vrsky")
	require.Contains(t, string(b), "--chown=nonroot:nonroot /out/keys /keys", "the roles (nonroot) own the keys volume")
	require.Contains(t, string(b), "ENTRYPOINT [\"/usr/local/bin/vrsky\"]", "the healthchecks call /usr/local/bin/vrsky healthcheck")
}
