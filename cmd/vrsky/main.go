// Command vrsky is the one VRSky binary. `vrsky dev` runs the whole platform
// in one process; the other subcommands run single roles or tools.
//
// This package only wires: it parses flags and VRSKY_… environment variables,
// builds the dependencies, runs them and shuts them down on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// errUsage marks errors caused by bad arguments; they exit with status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		setGC(ctx, os.Args[1], os.Getenv)
	}
	err := runWithInput(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "vrsky:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "vrsky:", err)
		os.Exit(1)
	}
}

const usageText = `vrsky — the VRSky integration platform

Usage:
  vrsky dev [flags]              run everything in one process (embedded NATS, Temporal, S3, PostgreSQL)
  vrsky connectors list [--json]   list the connectors with their config schemas
  vrsky connector new NAME --kind KIND  scaffold a connector package
  vrsky apply -f FILE [--tenant T]  deploy an integration spec to a running vrsky dev
  vrsky integrations CMD [ID]    list, get, status, logs, versions, deploy, start, stop or delete integrations
  vrsky secrets CMD [NAME]       list, put or delete the tenant's secrets
  vrsky keys CMD [ID]            list, create or revoke the tenant's API keys
  vrsky dlq CMD [ID]             list, get, replay or discard dead letters
  vrsky schedules CMD INTEGRATION  get, pause, resume, trigger or backfill a schedule
  vrsky tenants CMD [ID]         list, get, create or delete tenants (platform admin key)
  vrsky demo N [--data-dir DIR]  run example N (examples/N-…, 1 to 4) against a running vrsky dev
  vrsky api|worker|runner [flags] run one production role against VRSKY_… infrastructure (--dev DIR: a dev stack's)
  vrsky migrate up|down|version  manage the metadata schema at VRSKY_DATABASE_URL
  vrsky nats-config -keys FILE   print the NATS server configuration for a keys file (created if missing)
  vrsky healthcheck [-url URL]   exit 0 when a role's health endpoint answers 2xx (container healthchecks)
  vrsky bench [flags]            measure the pipeline end to end on this machine
  vrsky version                  print the version, commit, build date and Go version

Run "vrsky COMMAND -h" for a command's flags.
`

// run runs the command args with no standard input.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWithInput(ctx, args, strings.NewReader(""), stdout, stderr)
}

// runWithInput runs the command args. -h, -help or --help anywhere before
// "--" prints the command's help on stdout and succeeds: the command's
// flag set stops at it before anything runs, printing its flags where it
// prints errors, here stdout.
func runWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	if len(args) > 1 && helpRequested(args[1:]) {
		err := dispatch(ctx, args, stdin, stdout, stdout)
		if err == nil || isHelp(err) {
			return nil
		}
		return err
	}
	return dispatch(ctx, args, stdin, stdout, stderr)
}

// dispatch runs the command args[0].
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stderr)
	case "connector":
		return runConnectorNew(args[1:], stdout, stderr)
	case "connectors":
		return runConnectors(args[1:], stdout, stderr)
	case "apply":
		return runApply(ctx, args[1:], stdout, stderr)
	case "integrations":
		return runIntegrations(ctx, args[1:], stdout, stderr)
	case "tenants":
		return tenantsGroup.run(ctx, args[1:], stdin, stdout, stderr)
	case "keys":
		return keysGroup.run(ctx, args[1:], stdin, stdout, stderr)
	case "secrets":
		return secretsGroup.run(ctx, args[1:], stdin, stdout, stderr)
	case "dlq":
		return dlqGroup.run(ctx, args[1:], stdin, stdout, stderr)
	case "schedules":
		return schedulesGroup.run(ctx, args[1:], stdin, stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "api", "worker", "runner":
		return runRole(ctx, args[0], args[1:], stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "nats-config":
		return runNATSConfig(args[1:], stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], stderr)
	case "nats-server": // hidden: the process of a dedicated instance under vrsky dev
		return runNATSServer(ctx, args[1:], stderr)
	case "version", "--version", "-v":
		if helpRequested(args[1:]) {
			fmt.Fprint(stdout, "Usage: vrsky version\n\nPrints the version, commit, build date, Go version and which build it is.\n")
			return flag.ErrHelp
		}
		writeVersion(stdout)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
