package devstack_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// testNet is a network of namespaces for a NATS cluster that can be
// partitioned: each node has a namespace of its own with two links to
// bridges in the test's namespace, one on the cluster network (routes
// between nodes) and one on the client network (clients and monitoring,
// reached from the test's namespace, which has the client bridge's
// address). Cutting a node's cluster link leaves it running and
// reachable by its clients, but silent to the other two nodes: no reset,
// no refused connection, as when a network between machines fails.
type testNet struct {
	clusterBridge, clientBridge string
	hosts                       []nsHost
	// undo holds the ip commands that remove what was made, in the order
	// it was made.
	undo [][]string
}

// nsHost is one node's namespace, its addresses and the names of its
// links' ends in the test's namespace.
type nsHost struct {
	netns                   string
	clusterIP, clientIP     netip.Addr
	clusterLink, clientLink string
}

// Ports every node listens on inside its own namespace.
const (
	nsClientPort  = 4222
	nsRoutePort   = 6222
	nsMonitorPort = 8222
)

var testNetSeq atomic.Int32

// ip runs ip(8) and returns its output with the command in the error.
func ip(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// newTestNet makes n namespaces and the two bridges, and removes them all
// when the test ends, whether it passed or not. Names carry the test
// process's id and a sequence number, so runs side by side, or the
// leftovers of a run that was killed, do not collide; the two /24
// networks are drawn from 10.0.0.0/8 among those no interface or route
// of the test's namespace uses.
func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	id := fmt.Sprintf("%d%c", os.Getpid(), 'a'+testNetSeq.Add(1)%26)
	clusterNet, clientNet := freeSubnets(t)
	tn := &testNet{clusterBridge: "vk" + id + "c", clientBridge: "vk" + id + "a"}
	t.Cleanup(func() { tn.remove(t) })
	run := func(undo []string, args ...string) {
		t.Helper()
		_, err := ip(args...)
		require.NoError(t, err, "set up the partition test's network namespaces")
		if undo != nil {
			tn.undo = append(tn.undo, undo)
		}
	}
	for _, br := range []string{tn.clusterBridge, tn.clientBridge} {
		run([]string{"link", "del", br}, "link", "add", br, "type", "bridge")
		run(nil, "link", "set", br, "up")
	}
	run(nil, "addr", "add", addrIn(clientNet, 1).String()+"/24", "dev", tn.clientBridge)
	for i := range n {
		h := nsHost{
			netns:       fmt.Sprintf("vrsky-%s-n%d", id, i+1),
			clusterIP:   addrIn(clusterNet, byte(i+2)),
			clientIP:    addrIn(clientNet, byte(i+2)),
			clusterLink: fmt.Sprintf("vk%sc%d", id, i+1),
			clientLink:  fmt.Sprintf("vk%sa%d", id, i+1),
		}
		run([]string{"netns", "del", h.netns}, "netns", "add", h.netns)
		run(nil, "-n", h.netns, "link", "set", "lo", "up")
		for _, l := range []struct {
			link, inside, bridge string
			addr                 netip.Addr
		}{
			{h.clusterLink, "cluster", tn.clusterBridge, h.clusterIP},
			{h.clientLink, "client", tn.clientBridge, h.clientIP},
		} {
			run([]string{"link", "del", l.link}, "link", "add", l.link, "type", "veth", "peer", "name", l.inside, "netns", h.netns)
			run(nil, "link", "set", l.link, "master", l.bridge, "up")
			run(nil, "-n", h.netns, "addr", "add", l.addr.String()+"/24", "dev", l.inside)
			run(nil, "-n", h.netns, "link", "set", l.inside, "up")
		}
		tn.hosts = append(tn.hosts, h)
	}
	return tn
}

// remove undoes newTestNet, last made first. Removing a link removes its
// other end too; a namespace goes once no process runs in it, so the
// nodes must have been stopped first (their cleanup runs before this one).
func (tn *testNet) remove(t *testing.T) {
	for i := len(tn.undo) - 1; i >= 0; i-- {
		if _, err := ip(tn.undo[i]...); err != nil {
			t.Errorf("remove the partition test's network: %v", err)
		}
	}
}

// places puts node i in namespace i: clients and monitoring on its client
// address, the route on its cluster address.
func (tn *testNet) places() []nodePlace {
	var places []nodePlace
	for _, h := range tn.hosts {
		places = append(places, nodePlace{
			netns: h.netns, clientHost: h.clientIP.String(), routeHost: h.clusterIP.String(),
			client: nsClientPort, route: nsRoutePort, monitor: nsMonitorPort,
		})
	}
	return places
}

// cut takes node i's cluster link down at the bridge: from then on
// nothing it sends reaches the other nodes and nothing they send reaches
// it, while its client link stays up. It runs off the test's goroutine,
// so it reports with t.Errorf.
func (tn *testNet) cut(t *testing.T, i int) {
	if _, err := ip("link", "set", tn.hosts[i].clusterLink, "down"); err != nil {
		t.Errorf("cut node %d off: %v", i+1, err)
	}
}

// heal brings node i's cluster link back.
func (tn *testNet) heal(t *testing.T, i int) {
	if _, err := ip("link", "set", tn.hosts[i].clusterLink, "up"); err != nil {
		t.Errorf("heal node %d: %v", i+1, err)
	}
}

// freeSubnets draws two adjacent /24 networks in 10.0.0.0/8 that overlap
// no address or route of the test's namespace.
func freeSubnets(t *testing.T) (cluster, client netip.Prefix) {
	t.Helper()
	var used []netip.Prefix
	addrs, err := ip("-4", "-o", "addr", "show")
	require.NoError(t, err)
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		for j := 0; j+1 < len(f); j++ {
			if f[j] == "inet" {
				if p, err := netip.ParsePrefix(f[j+1]); err == nil {
					used = append(used, p.Masked())
				}
			}
		}
	}
	routes, err := ip("-4", "route", "show", "table", "all")
	require.NoError(t, err)
	for _, line := range strings.Split(routes, "\n") {
		for _, f := range strings.Fields(line) {
			if p, err := netip.ParsePrefix(f); err == nil {
				used = append(used, p.Masked())
			} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
				used = append(used, netip.PrefixFrom(a, 32))
			}
		}
	}
	free := func(p netip.Prefix) bool {
		for _, u := range used {
			if u.Bits() > 0 && u.Overlaps(p) {
				return false
			}
		}
		return true
	}
	for range 200 {
		b, c := byte(64+rand.IntN(190)), byte(2*rand.IntN(128))
		cluster = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, c, 0}), 24)
		client = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, c + 1, 0}), 24)
		if free(cluster) && free(client) {
			return cluster, client
		}
	}
	t.Fatalf("no free /24 pair in 10.0.0.0/8 beside %v", used)
	return
}

// addrIn is host number h of a /24.
func addrIn(p netip.Prefix, h byte) netip.Addr {
	a := p.Addr().As4()
	a[3] = h
	return netip.AddrFrom4(a)
}
