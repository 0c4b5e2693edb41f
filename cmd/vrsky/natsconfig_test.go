package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNATSConfigPrintsTheSameOperatorForTheSameKeys(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "nats-keys.json")
	var first, second bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"nats-config", "-keys", keys}, &first, io.Discard))
	require.NoError(t, run(context.Background(), []string{"nats-config", "-keys", keys, "-jwt-dir", "/var/jwt"}, &second, io.Discard))
	for _, want := range []string{"operator: ", "system_account: ", "type: full", "allow_delete: true", "resolver_preload"} {
		require.Contains(t, first.String(), want)
	}
	require.Contains(t, second.String(), `"/var/jwt"`)
	operator := func(conf string) string { return strings.SplitN(strings.SplitN(conf, "operator: ", 2)[1], "\n", 2)[0] }
	require.Equal(t, operator(first.String()), operator(second.String()), "the keys file is kept")
	info, err := os.Stat(keys)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	conf := filepath.Join(filepath.Dir(keys), "nats.conf")
	var none bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"nats-config", "-keys", keys, "-out", conf}, &none, io.Discard))
	require.Zero(t, none.Len())
	written, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.Equal(t, first.String(), string(written))

	require.ErrorIs(t, run(context.Background(), []string{"nats-config"}, io.Discard, io.Discard), errUsage)
	require.ErrorIs(t, run(context.Background(), []string{"nats-config", "-nope"}, io.Discard, io.Discard), errUsage)
}
