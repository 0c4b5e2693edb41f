//go:build vrsky_production

package main

import (
	"context"
	"io"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
)

// The production build (go build -tags vrsky_production ./cmd/vrsky, what
// the Dockerfile and `make release` build) leaves out everything only the
// development commands need: the embedded Temporal server and its Web UI
// (internal/temporaldev), the embedded NATS server (internal/natsserver),
// the in-process S3 store (internal/s3dev), the private PostgreSQL
// (internal/pgcluster), the dev stack that wires them (cmd/vrsky/internal/devstack),
// the benchmark (cmd/vrsky/internal/bench) and the demos (cmd/vrsky/internal/demo). Those
// commands answer devOnly's error instead. production_test.go checks that
// none of those packages is linked.
const productionBuild = true

func runDev(context.Context, []string, io.Writer) error { return devOnly("vrsky dev") }

func runBench(context.Context, []string, io.Writer, io.Writer) error {
	return devOnly("vrsky bench")
}

func runDemo(context.Context, []string, io.Writer, io.Writer) error {
	return devOnly("vrsky demo")
}

func runNATSServer(context.Context, []string, io.Writer) error {
	return devOnly("vrsky nats-server")
}

func devRoleConfig(string) (roles.Config, error) {
	return roles.Config{}, devOnly("--dev")
}

func devAPIURL(string) (string, error) {
	return "", devOnly("finding a dev stack's API (give --api or VRSKY_API_URL)")
}

func devAdminKey(string) (string, error) {
	return "", devOnly("using a dev stack's admin key (give --key or VRSKY_API_KEY)")
}
