package natscluster

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNodeConfigRendersEverySetting(t *testing.T) {
	n := Node{Name: "nats-2", Peers: []string{"nats://nats-1:6222", "nats://nats-2:6222", "nats://10.0.0.3:6222"},
		MaxFileStore: "20G", SyncInterval: "always"}
	conf, err := n.Config()
	require.NoError(t, err)
	for _, want := range []string{
		`server_name: "nats-2"`, `listen: "0.0.0.0:4222"`, `http: "0.0.0.0:8222"`, "max_payload: 1MB",
		`store_dir: "/data"`, "max_file_store: 20G", `sync_interval: "always"`,
		`name: "vrsky"`, `listen: "0.0.0.0:6222"`, `"nats://nats-1:6222"`, `"nats://10.0.0.3:6222"`,
	} {
		require.Contains(t, conf, want)
	}
	n.MaxFileStore, n.SyncInterval, n.ClusterName = "", "", "other"
	conf, err = n.Config()
	require.NoError(t, err)
	require.NotContains(t, conf, "max_file_store")
	require.NotContains(t, conf, "sync_interval")
	require.Contains(t, conf, `name: "other"`)
	n.SyncInterval = "10s"
	conf, err = n.Config()
	require.NoError(t, err)
	require.Contains(t, conf, `sync_interval: "10s"`)
}

func TestNodeValidateRefusesWhatCouldBreakTheFile(t *testing.T) {
	peers := []string{"nats://a:6222", "nats://b:6222", "nats://c:6222"}
	ok := Node{Name: "n1", Peers: peers}
	require.NoError(t, ok.Validate())
	for name, mutate := range map[string]func(*Node){
		"no name":             func(n *Node) { n.Name = "" },
		"newline in name":     func(n *Node) { n.Name = "n\n}" },
		"oversize name":       func(n *Node) { n.Name = strings.Repeat("a", 65) },
		"bad cluster":         func(n *Node) { n.ClusterName = "x\"y" },
		"no peers":            func(n *Node) { n.Peers = nil },
		"too many peers":      func(n *Node) { n.Peers = make([]string, 17) },
		"tls peer":            func(n *Node) { n.Peers = []string{"tls://a:6222", "nats://b:6222"} },
		"peer with query":     func(n *Node) { n.Peers = []string{"nats://a:6222?x=1", "nats://b:6222"} },
		"peer with fragment":  func(n *Node) { n.Peers = []string{"nats://a:6222#x", "nats://b:6222"} },
		"peer port zero":      func(n *Node) { n.Peers = []string{"nats://a:0", "nats://b:6222"} },
		"peer bad host":       func(n *Node) { n.Peers = []string{"nats://a_b:6222", "nats://b:6222"} },
		"oversize peer host":  func(n *Node) { n.Peers = []string{"nats://" + strings.Repeat("a", 300) + ":6222", "nats://b:6222"} },
		"unparsable peer":     func(n *Node) { n.Peers = []string{"nats://%zz", "nats://b:6222"} },
		"client listen":       func(n *Node) { n.ClientListen = "nohost" },
		"cluster listen port": func(n *Node) { n.ClusterListen = "0.0.0.0:x" },
		"monitor listen":      func(n *Node) { n.MonitorListen = "a\"b:8222" },
		"relative store":      func(n *Node) { n.StoreDir = "data" },
		"store with newline":  func(n *Node) { n.StoreDir = "/data\n" },
		"store size":          func(n *Node) { n.MaxFileStore = "20 GB" },
		"store size unit":     func(n *Node) { n.MaxFileStore = "20B" },
		"sync word":           func(n *Node) { n.SyncInterval = "never" },
		"sync zero":           func(n *Node) { n.SyncInterval = "0s" },
		"sync too long":       func(n *Node) { n.SyncInterval = "2h" },
	} {
		t.Run(name, func(t *testing.T) {
			n := ok
			n.Peers = append([]string(nil), peers...)
			mutate(&n)
			require.ErrorIs(t, n.Validate(), errNode)
			_, err := n.Config()
			require.ErrorIs(t, err, errNode)
		})
	}
	ipv6 := Node{Name: "n1", Peers: []string{"nats://[::1]:6222", "nats://[::1]:6223"}, ClientListen: "[::]:4222"}
	require.NoError(t, ipv6.Validate())
}
