package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
)

// runNATSConfig prints the nats-server configuration that makes a
// production NATS server trust the keys in -keys (created, mode 0600, when
// missing): the roles then run with VRSKY_NATS_KEYS_FILE pointing at the
// same file, and every tenant gets its own NATS account. With -node-name
// and -cluster-peers it prints a whole node of the platform cluster: its
// name, listeners, JetStream store and routes, then the same trust block.
func runNATSConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keysFile := fs.String("keys", os.Getenv("VRSKY_NATS_KEYS_FILE"), "the platform's NATS keys file [VRSKY_NATS_KEYS_FILE]")
	jwtDir := fs.String("jwt-dir", "/data/jwt", "where the NATS server keeps account JWTs")
	out := fs.String("out", "", "write the configuration to this file instead of standard output")
	var node natscluster.Node
	fs.StringVar(&node.Name, "node-name", "", "this node's server_name, unique and stable (a cluster node's configuration; with -cluster-peers)")
	peers := fs.String("cluster-peers", "", "comma-separated route URLs of the cluster's nodes, e.g. nats://nats-1:6222,nats://nats-2:6222,nats://nats-3:6222")
	fs.StringVar(&node.ClusterName, "cluster-name", natscluster.DefaultClusterName, "the cluster's name")
	fs.StringVar(&node.ClusterListen, "cluster-listen", natscluster.DefaultClusterListen, "host:port the routes listen on")
	fs.StringVar(&node.ClientListen, "listen", natscluster.DefaultClientListen, "host:port clients connect to")
	fs.StringVar(&node.MonitorListen, "http", natscluster.DefaultMonitorListen, "host:port of the monitoring endpoints")
	fs.StringVar(&node.StoreDir, "store-dir", natscluster.DefaultStoreDir, "JetStream's store directory")
	fs.StringVar(&node.MaxFileStore, "max-file-store", "", "JetStream's file store limit, e.g. 20G (default: the server's)")
	fs.StringVar(&node.SyncInterval, "sync-interval", "", `JetStream's fsync policy: "always", or a duration (default: the server's, 2m; see docs/nats.md)`)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *keysFile == "" {
		return fmt.Errorf("%w: vrsky nats-config -keys FILE [-node-name NAME -cluster-peers URLS]", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	clustered := node.Name != "" || *peers != ""
	var conf strings.Builder
	if clustered {
		if *peers != "" {
			node.Peers = strings.Split(*peers, ",")
		}
		nodeConf, err := node.Config()
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		conf.WriteString(nodeConf)
	}
	keys, err := natsauth.LoadOrCreateKeys(*keysFile)
	if err != nil {
		return err
	}
	trust, err := keys.ServerConfig(*jwtDir)
	if err != nil {
		return err
	}
	conf.WriteString(trust)
	if *out != "" {
		// Account JWTs are signed claims, not secrets: the server may read
		// the file as another user.
		return os.WriteFile(*out, []byte(conf.String()), 0o644)
	}
	_, err = io.WriteString(stdout, conf.String())
	return err
}
