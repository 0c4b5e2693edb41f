package natscluster

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of a node's configuration: the ports NATS documents and the
// ones the compose file and the Helm chart use.
const (
	DefaultClusterName   = "vrsky"
	DefaultClientListen  = "0.0.0.0:4222"
	DefaultClusterListen = "0.0.0.0:6222"
	DefaultMonitorListen = "0.0.0.0:8222"
	DefaultStoreDir      = "/data"
	// DefaultMaxPayload is the largest message a node takes: VRSky sends
	// bodies over 256 KiB through the blob store.
	DefaultMaxPayload = "1MB"
	// maxPeers bounds -cluster-peers; JetStream clusters are 3 or 5 nodes.
	maxPeers = 16
)

// Node is the configuration of one node of the platform cluster. The
// operator-mode trust block (natsauth's ServerConfig) is added after it.
type Node struct {
	// Name is the node's server_name, unique in the cluster and stable
	// across restarts (JetStream's Raft groups know nodes by it).
	Name string
	// ClusterName names the cluster (DefaultClusterName when empty).
	ClusterName string
	// Peers are the route URLs of the cluster's nodes (nats://host:port);
	// the node's own URL may be among them, it is ignored.
	Peers []string
	// ClientListen, ClusterListen and MonitorListen are host:port to
	// listen on (the Default… values when empty).
	ClientListen, ClusterListen, MonitorListen string
	// StoreDir holds JetStream's files (DefaultStoreDir when empty).
	StoreDir string
	// MaxFileStore caps JetStream's file store, e.g. "20G" (empty: the
	// server's default, three quarters of the disk). NATS reads G as 10^9
	// bytes and GB as 2^30.
	MaxFileStore string
	// SyncInterval is JetStream's fsync policy: empty keeps the server's
	// default (every two minutes), "always" syncs before every
	// acknowledgement, a duration ("10s") syncs that often. See
	// docs/nats.md for what each costs and protects.
	SyncInterval string
}

var (
	nodeName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	storeSize    = regexp.MustCompile(`^[0-9]{1,15}([KMGT]B?)?$`)
	safePathChar = regexp.MustCompile(`^[A-Za-z0-9/._ -]{1,512}$`)
	// errNode prefixes every refusal of a node's settings.
	errNode = errors.New("nats node configuration")
)

// Validate checks every field; values end up in a configuration file, so
// only plain names, addresses and paths pass.
func (n Node) Validate() error {
	if !nodeName.MatchString(n.Name) {
		return fmt.Errorf("%w: node name %q: want 1 to 64 letters, digits, '.', '_' or '-'", errNode, n.Name)
	}
	if c := cmp.Or(n.ClusterName, DefaultClusterName); !nodeName.MatchString(c) {
		return fmt.Errorf("%w: cluster name %q: want 1 to 64 letters, digits, '.', '_' or '-'", errNode, c)
	}
	if len(n.Peers) < 2 || len(n.Peers) > maxPeers {
		return fmt.Errorf("%w: %d cluster peers: a cluster lists 2 to %d route URLs (nats://host:6222)", errNode, len(n.Peers), maxPeers)
	}
	for _, p := range n.Peers {
		if err := checkRoute(p); err != nil {
			return err
		}
	}
	for _, l := range []struct{ what, addr string }{
		{"client listen", cmp.Or(n.ClientListen, DefaultClientListen)},
		{"cluster listen", cmp.Or(n.ClusterListen, DefaultClusterListen)},
		{"monitor listen", cmp.Or(n.MonitorListen, DefaultMonitorListen)},
	} {
		if err := checkHostPort(l.addr); err != nil {
			return fmt.Errorf("%w: %s %q: %v", errNode, l.what, l.addr, err)
		}
	}
	if d := cmp.Or(n.StoreDir, DefaultStoreDir); !strings.HasPrefix(d, "/") || !safePathChar.MatchString(d) {
		return fmt.Errorf("%w: store dir %q: want an absolute path of letters, digits, '/', '.', '_', '-' and spaces", errNode, d)
	}
	if n.MaxFileStore != "" && !storeSize.MatchString(n.MaxFileStore) {
		return fmt.Errorf("%w: max file store %q: want a size such as 20G", errNode, n.MaxFileStore)
	}
	if s := n.SyncInterval; s != "" && s != "always" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > time.Hour {
			return fmt.Errorf("%w: sync interval %q: want \"always\" or a duration up to 1h", errNode, s)
		}
	}
	return nil
}

// checkRoute accepts nats://host:port and nothing else.
func checkRoute(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "nats" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: cluster peer %q: want nats://host:port", errNode, raw)
	}
	if err := checkHostPort(u.Host); err != nil {
		return fmt.Errorf("%w: cluster peer %q: %v", errNode, raw, err)
	}
	return nil
}

// hostName is a DNS name or an IPv4 address.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	if net.ParseIP(host) == nil && !hostName.MatchString(host) {
		return fmt.Errorf("host %q: want a name or an IP address", host)
	}
	return nil
}

// Config renders the node's settings as nats-server configuration: the
// server name, the client, cluster and monitoring listeners, JetStream
// with its store and fsync policy, and the routes to the peers. It
// validates first.
func (n Node) Config() (string, error) {
	if err := n.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# VRSky platform NATS: node %s of cluster %s.\n", n.Name, cmp.Or(n.ClusterName, DefaultClusterName))
	fmt.Fprintf(&b, "server_name: %q\n", n.Name)
	fmt.Fprintf(&b, "listen: %q\n", cmp.Or(n.ClientListen, DefaultClientListen))
	fmt.Fprintf(&b, "http: %q\n", cmp.Or(n.MonitorListen, DefaultMonitorListen))
	fmt.Fprintf(&b, "max_payload: %s\n", DefaultMaxPayload)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", cmp.Or(n.StoreDir, DefaultStoreDir))
	if n.MaxFileStore != "" {
		fmt.Fprintf(&b, "  max_file_store: %s\n", n.MaxFileStore)
	}
	if n.SyncInterval != "" {
		fmt.Fprintf(&b, "  sync_interval: %q\n", n.SyncInterval)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: %q\n  routes: [\n", cmp.Or(n.ClusterName, DefaultClusterName), cmp.Or(n.ClusterListen, DefaultClusterListen))
	for _, p := range n.Peers {
		fmt.Fprintf(&b, "    %q\n", p)
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}
