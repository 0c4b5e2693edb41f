package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelpOnEveryCommand runs -h and --help on every command and
// subcommand: each prints its own help on stdout, nothing on stderr, and
// succeeds without doing anything else.
func TestHelpOnEveryCommand(t *testing.T) {
	commands := [][]string{
		{"dev"}, {"api"}, {"worker"}, {"runner"}, {"migrate"}, {"bench"}, {"demo"}, {"demo", "1"},
		{"nats-config"}, {"healthcheck"}, {"version"}, {"apply"}, {"connectors"}, {"connectors", "list"},
		{"connector"}, {"connector", "new"}, {"connector", "new", "thing"}, {"integrations"},
	}
	for _, c := range integrationCommands {
		commands = append(commands, []string{"integrations", c})
	}
	for _, g := range []group{tenantsGroup, keysGroup, secretsGroup, dlqGroup, schedulesGroup} {
		commands = append(commands, []string{g.name})
		for _, s := range g.subs {
			commands = append(commands, []string{g.name, s.name})
		}
	}
	// What each command's help names: its flags, or its usage line.
	mustName := map[string]string{
		"dev": "-data-dir", "api": "-http-addr", "worker": "-http-addr", "runner": "-name", "migrate": "up|down|version",
		"bench": "-rate", "demo": "-tenant", "demo 1": "-tenant", "nats-config": "-keys", "healthcheck": "-url",
		"version": "Usage: vrsky version", "apply": "-f", "connectors": "connectors list", "connectors list": "-json",
		"connector": "-kind", "connector new": "-kind", "connector new thing": "-kind", "integrations": "integrations COMMAND",
		"tenants create": "-key-file", "keys create": "-scopes", "secrets put": "-from-file", "dlq list": "-integration",
		"dlq replay": "-ids", "dlq discard": "-all", "schedules backfill": "-start", "schedules pause": "-reason",
	}
	for _, cmd := range commands {
		for _, flag := range []string{"-h", "--help"} {
			name := strings.Join(cmd, " ")
			t.Run(name+" "+flag, func(t *testing.T) {
				var out, errOut bytes.Buffer
				// The data directory does not exist: a command that ran
				// instead of printing its help would fail.
				args := append(append([]string{}, cmd...), flag)
				err := run(context.Background(), args, &out, &errOut)
				require.NoError(t, err, "stderr: %s", errOut.String())
				require.Empty(t, errOut.String())
				help := out.String()
				require.NotEmpty(t, help)
				if want, ok := mustName[name]; ok {
					require.Contains(t, help, want)
				} else if len(cmd) == 2 && cmd[0] == "integrations" {
					require.Contains(t, help, "Flags of "+cmd[1], "a subcommand's help lists its flags")
				} else if len(cmd) == 2 && cmd[0] != "demo" && cmd[0] != "connectors" {
					require.Contains(t, help, "vrsky "+name, "a subcommand's help names it")
					require.Contains(t, help, "-json", "and lists the shared flags")
				}
			})
		}
	}
	// Help after "--" is an argument, not a request for help.
	var out, errOut bytes.Buffer
	require.ErrorIs(t, run(context.Background(), []string{"healthcheck", "--", "-h"}, &out, &errOut), errUsage)
}

func TestGroupsRejectBadUse(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"tenants"}, "vrsky tenants COMMAND"},
		{"unknown subcommand", []string{"secrets", "steal"}, `unknown secrets command "steal"`},
		{"missing argument", []string{"secrets", "delete"}, "takes 1 argument(s) (NAME), got 0"},
		{"extra argument", []string{"keys", "delete", "a", "b"}, "takes 1 argument(s) (ID), got 2"},
		{"argument where none is taken", []string{"dlq", "list", "x"}, "takes 0 argument(s)"},
		{"unknown flag", []string{"schedules", "get", "x", "--bogus"}, "flag provided but not defined"},
		{"bad time", []string{"dlq", "list", "--since", "yesterday", "--key", "k", "--api", "http://127.0.0.1:1"}, "not an RFC 3339 time"},
		{"bad limit", []string{"dlq", "list", "--limit", "1000", "--key", "k", "--api", "http://127.0.0.1:1"}, "--limit must be 1 to 100"},
		{"replay of nothing picked", []string{"dlq", "replay", "--key", "k", "--api", "http://127.0.0.1:1"}, "give --all"},
		{"negative max", []string{"dlq", "discard", "--max", "-1", "--key", "k", "--api", "http://127.0.0.1:1"}, "--max must not be negative"},
		{"unknown scope", []string{"keys", "create", "--scopes", "read,root", "--key", "k", "--api", "http://127.0.0.1:1"}, `unknown scope "root"`},
		{"no scope", []string{"keys", "create", "--scopes", ",", "--key", "k", "--api", "http://127.0.0.1:1"}, "give at least one"},
		{"backfill without start", []string{"schedules", "backfill", "x", "--key", "k", "--api", "http://127.0.0.1:1"}, "--start"},
		{"invalid tenant ID", []string{"tenants", "create", "Not Valid", "--key", "k", "--api", "http://127.0.0.1:1"}, "invalid tenant ID"},
		{"value and file", []string{"secrets", "put", "s", "--value", "v", "--from-file", "f", "--key", "k", "--api", "http://127.0.0.1:1"}, "not both"},
		{"no API", []string{"tenants", "list", "--data-dir", "/nonexistent"}, "is vrsky dev running?"},
		{"API down", []string{"secrets", "list", "--key", "k", "--api", "http://127.0.0.1:1"}, "list secrets:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.ErrorContains(t, run(ctx, tt.args, &out, &errOut), tt.want)
		})
	}
}

func TestSecretValueIsBounded(t *testing.T) {
	v, err := secretValue("", "", strings.NewReader("s3cret\n"))
	require.NoError(t, err)
	require.Equal(t, "s3cret", v, "one trailing newline goes")
	_, err = secretValue("", "", strings.NewReader(""))
	require.ErrorContains(t, err, "empty")
	_, err = secretValue("", "", strings.NewReader(strings.Repeat("x", maxSecretBytes+1)))
	require.ErrorContains(t, err, "over")
	_, err = secretValue("", "/nonexistent/secret", nil)
	require.ErrorContains(t, err, "read secret")
	v, err = secretValue("given", "", nil)
	require.NoError(t, err)
	require.Equal(t, "given", v)
}
