//go:build !vrsky_production

package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDevRefusesBadNATSSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"an even node count", []string{"--nats-nodes", "2"}, nil, "want 1, 3 or 5"},
		{"no node", []string{"--nats-nodes", "0"}, nil, "want 1, 3 or 5"},
		{"a huge node count", []string{"--nats-nodes", "99"}, nil, "want 1, 3 or 5"},
		{"a node count that is no number", nil, map[string]string{"VRSKY_DEV_NATS_NODES": "three"}, "VRSKY_DEV_NATS_NODES"},
		{"an external url and nodes", []string{"--nats-url", "nats://127.0.0.1:1", "--nats-nodes", "3"}, nil, "exclude each other"},
		{"a bad replica count", []string{"--nats-url", "nats://127.0.0.1:1"}, map[string]string{"VRSKY_NATS_REPLICAS": "7"}, "VRSKY_NATS_REPLICAS"},
		{"a replica count that is no number", []string{"--nats-url", "nats://127.0.0.1:1"}, map[string]string{"VRSKY_NATS_REPLICAS": "3x"}, "VRSKY_NATS_REPLICAS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := runDev(context.Background(), append([]string{"--data-dir", t.TempDir()}, tc.args...), io.Discard)
			require.ErrorIs(t, err, errUsage)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
