package devstack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The partition test is the node-loss test (nodeloss_test.go) with a
// network failure instead of a crash: each node runs in a network
// namespace of its own (netns_test.go), and the victim's link to the
// cluster network is taken down under load, then brought back. The
// victim keeps running, and the stack's connections to it stay up; only
// the routes between it and the two others fall silent. The same checks
// hold (every 202 is in the file, every message not in the file was
// answered 503, the node rejoins), and more: the cut-off process answers
// its clients throughout and never exits, and the stream stored each
// message once.

// TestWebhookThroughAPartition cuts one node off for 8 s of a 15 s run at
// 300 msgs/s: once the stream leader's node, once the node holding the
// connection the webhook publishes on (its requests have nowhere to go
// until the heal, or until their 8 s of retries run out).
func TestWebhookThroughAPartition(t *testing.T) {
	for _, victim := range []string{"stream", "ingress"} {
		t.Run(victim, func(t *testing.T) {
			runNodeLoss(t, nodeLoss{rate: 300, duration: 15 * time.Second, killAt: 4 * time.Second, restartAt: 12 * time.Second, victim: victim, partition: true})
		})
	}
}

// TestWebhookThroughAPartitionLong is the long form: 3,000 msgs/s for a
// minute, the cut at 20 s and the heal at 40 s, for the meta leader's
// node, the stream leader's and the webhook connection's.
func TestWebhookThroughAPartitionLong(t *testing.T) {
	if os.Getenv("VRSKY_LONG_TESTS") != "1" {
		t.Skip("set VRSKY_LONG_TESTS=1 to run the minute-long partition runs")
	}
	for _, victim := range []string{"meta", "stream", "ingress"} {
		t.Run(victim, func(t *testing.T) {
			runNodeLoss(t, nodeLoss{rate: 3000, duration: 60 * time.Second, killAt: 20 * time.Second, restartAt: 40 * time.Second, victim: victim, partition: true})
		})
	}
}

// watchCutOff logs, twice while the partition lasts (3 s after the cut
// and 1 s before the heal), what the cut-off node and the two others see:
// the meta leader on each side and the client connections the cut-off
// node still holds, with the messages each has sent it since the cut.
func watchCutOff(t *testing.T, c *cluster, cut *node, began, healAt time.Time) {
	before := connections(cut)
	for _, at := range []time.Time{time.Now().Add(3 * time.Second), healAt.Add(-time.Second)} {
		time.Sleep(time.Until(at))
		var majority []string
		for _, n := range c.nodes {
			if n != cut {
				leader, _ := jsz(n)
				majority = append(majority, n.name+"→"+leader)
			}
		}
		minority, _ := jsz(cut)
		conns := connections(cut)
		if conns == nil {
			t.Errorf("the cut-off node %s does not answer on its client network: the cut must leave it running and reachable", cut.name)
		}
		var held []string
		for cid, conn := range conns {
			held = append(held, fmt.Sprintf("%s (+%d msgs)", conn.Name, conn.InMsgs-before[cid].InMsgs))
		}
		t.Logf("%s: meta leader as the cut-off %s sees it: %q; as the others see it: %s; %d client connections on %s: %s",
			time.Since(began).Round(time.Millisecond), cut.name, minority, strings.Join(majority, ", "), len(held), cut.name, strings.Join(held, ", "))
	}
}

// connz is one client connection as a node's /connz shows it.
type connz struct {
	CID    uint64 `json:"cid"`
	Name   string `json:"name"`
	InMsgs int64  `json:"in_msgs"`
}

// connections are a node's client connections by id; nil when it does
// not answer.
func connections(n *node) map[uint64]connz {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(n.monitorURL() + "/connz?limit=1024")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Connections []connz `json:"connections"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	m := map[uint64]connz{}
	for _, c := range body.Connections {
		m[c.CID] = c
	}
	return m
}

// holding is the node a client connection of that name is connected to.
func (c *cluster) holding(t *testing.T, name string) string {
	t.Helper()
	var at []string
	for _, n := range c.nodes {
		for _, conn := range connections(n) {
			if conn.Name == name {
				at = append(at, n.name)
			}
		}
	}
	require.Len(t, at, 1, "one connection named %s in the cluster", name)
	return at[0]
}
