package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
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

// freePorts returns n loopback ports free at the time of the call.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ports[i] = l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
	}
	return ports
}

// TestNATSConfigWritesAClusterThatForms writes three nodes' files, loads
// each with nats-server's own config parser, starts the three servers from
// them and creates a stream with three replicas through the platform
// account the trust block names.
func TestNATSConfigWritesAClusterThatForms(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "nats-keys.json")
	ports := freePorts(t, 9) // client, cluster, monitor of three nodes
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i+1]))
	}
	var servers []*server.Server
	var urls []string
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		require.NoError(t, run(context.Background(), []string{"nats-config", "-keys", keysFile,
			"-node-name", name, "-cluster-peers", strings.Join(routes, ","),
			"-listen", fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			"-cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			"-http", fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
			"-store-dir", filepath.Join(dir, name, "js"), "-jwt-dir", filepath.Join(dir, name, "jwt"),
			"-max-file-store", "1GB", "-sync-interval", "always", "-out", conf}, io.Discard, io.Discard))

		opts, err := server.ProcessConfigFile(conf)
		require.NoError(t, err, "nats-server parses what nats-config wrote")
		require.Equal(t, name, opts.ServerName)
		require.Equal(t, "vrsky", opts.Cluster.Name)
		require.Equal(t, ports[3*i+1], opts.Cluster.Port)
		require.Len(t, opts.Routes, 3)
		require.True(t, opts.JetStream)
		require.True(t, opts.SyncAlways, "sync_interval: always")
		require.Equal(t, int64(1<<30), opts.JetStreamMaxStore)
		require.Equal(t, int32(1<<20), opts.MaxPayload)
		require.Len(t, opts.TrustedOperators, 1, "the operator-mode keys stay")
		require.NotEmpty(t, opts.SystemAccount)
		opts.NoSigs, opts.NoLog = true, true

		srv, err := server.NewServer(opts)
		require.NoError(t, err)
		go srv.Start()
		t.Cleanup(srv.Shutdown)
		servers = append(servers, srv)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i]))
	}
	require.Eventually(t, func() bool {
		leaders := 0
		for _, s := range servers {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	}, 30*time.Second, 100*time.Millisecond, "the three nodes elect one meta leader")

	keys, err := natsauth.LoadKeys(keysFile)
	require.NoError(t, err)
	creds, err := keys.PlatformUser("test")
	require.NoError(t, err)
	nc, err := nats.Connect(strings.Join(urls, ","), creds.Option())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stream jetstream.Stream
	require.Eventually(t, func() bool {
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
		return err == nil
	}, 15*time.Second, 200*time.Millisecond, "create an R3 stream: %v", err)
	_, err = js.Publish(ctx, "r3.x", []byte("hello"))
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	require.Len(t, info.Cluster.Replicas, 2, "a leader and two replicas")
}

func TestNATSConfigRefusesBadClusterSettings(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "nats-keys.json")
	peers := "nats://a:6222,nats://b:6222,nats://c:6222"
	for name, args := range map[string][]string{
		"peers without a name":          {"-cluster-peers", peers},
		"a name without peers":          {"-node-name", "n1"},
		"one peer":                      {"-node-name", "n1", "-cluster-peers", "nats://a:6222"},
		"too many peers":                {"-node-name", "n1", "-cluster-peers", strings.Repeat("nats://a:6222,", 20) + "nats://a:6222"},
		"a peer that is not nats://":    {"-node-name", "n1", "-cluster-peers", "http://a:6222,nats://b:6222"},
		"a peer without a port":         {"-node-name", "n1", "-cluster-peers", "nats://a,nats://b:6222"},
		"a peer with a user":            {"-node-name", "n1", "-cluster-peers", "nats://u:p@a:6222,nats://b:6222"},
		"a peer with a path":            {"-node-name", "n1", "-cluster-peers", "nats://a:6222/x,nats://b:6222"},
		"a quote in a peer":             {"-node-name", "n1", "-cluster-peers", `nats://a":6222,nats://b:6222`},
		"a name with a newline":         {"-node-name", "n1\ninclude \"/etc/passwd\"", "-cluster-peers", peers},
		"a name with a quote":           {"-node-name", `n1"`, "-cluster-peers", peers},
		"an oversize name":              {"-node-name", strings.Repeat("n", 65), "-cluster-peers", peers},
		"a bad cluster name":            {"-node-name", "n1", "-cluster-name", "a b", "-cluster-peers", peers},
		"a listen port out of range":    {"-node-name", "n1", "-cluster-peers", peers, "-listen", "0.0.0.0:70000"},
		"a cluster listen without port": {"-node-name", "n1", "-cluster-peers", peers, "-cluster-listen", "0.0.0.0"},
		"a hostile monitor host":        {"-node-name", "n1", "-cluster-peers", peers, "-http", "a}b:8222"},
		"a relative store dir":          {"-node-name", "n1", "-cluster-peers", peers, "-store-dir", "data"},
		"a store dir with a quote":      {"-node-name", "n1", "-cluster-peers", peers, "-store-dir", `/data"x`},
		"a bad file store size":         {"-node-name", "n1", "-cluster-peers", peers, "-max-file-store", "lots"},
		"a bad sync interval":           {"-node-name", "n1", "-cluster-peers", peers, "-sync-interval", "sometimes"},
		"a negative sync interval":      {"-node-name", "n1", "-cluster-peers", peers, "-sync-interval", "-1s"},
		"a stray argument":              {"-node-name", "n1", "-cluster-peers", peers, "extra"},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, "out.conf")
			err := run(context.Background(), append([]string{"nats-config", "-keys", keys, "-out", out}, args...), io.Discard, io.Discard)
			require.ErrorIs(t, err, errUsage)
			require.NoFileExists(t, out)
		})
	}
}
