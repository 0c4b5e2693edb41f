package devstack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/spec"
)

// nodeEnv, set in a child of the test binary, names the configuration
// file the child runs a NATS server from, as the nats-server command does.
const nodeEnv = "VRSKY_TEST_NATS_NODE_CONFIG"

func TestMain(m *testing.M) {
	if conf := os.Getenv(nodeEnv); conf != "" {
		runNode(conf)
		return
	}
	os.Exit(m.Run())
}

// runNode is `vrsky nats-server -c conf`: the server from the
// configuration file until SIGINT or SIGTERM.
func runNode(conf string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := natsserver.RunConfigFile(ctx, conf)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// node is one NATS server process of the cluster under test.
type node struct {
	name, conf, log string
	// host is the address its clients and monitoring reach; netns the
	// network namespace it runs in ("" for the test's own).
	host, netns     string
	client, monitor int
	cmd             *exec.Cmd
	exited          chan struct{}
}

func (n *node) url() string        { return fmt.Sprintf("nats://%s:%d", n.host, n.client) }
func (n *node) monitorURL() string { return fmt.Sprintf("http://%s:%d", n.host, n.monitor) }

func (n *node) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer logFile.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if n.netns != "" {
		// ip execs the test binary in the namespace: the pid is the node's.
		cmd = exec.Command("ip", "netns", "exec", n.netns, os.Args[0], "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), nodeEnv+"="+n.conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(n.exited)
}

// kill9 kills the process with SIGKILL: no lame duck, no flush.
func (n *node) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Kill())
	<-n.exited
}

// cluster is three NATS server processes from configurations written as
// `vrsky nats-config` writes them, trusting keys.
type cluster struct {
	nodes []*node
	keys  *natsauth.Keys
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nodePlace is where one node runs and listens: its network namespace
// ("" for the test's own), the address of its client and monitoring
// listeners and the address of its route, with their ports.
type nodePlace struct {
	netns                  string
	clientHost, routeHost  string
	client, route, monitor int
}

// loopbackPlaces puts three nodes on free loopback ports of the test's
// own namespace.
func loopbackPlaces(t *testing.T) []nodePlace {
	t.Helper()
	places := make([]nodePlace, 3)
	for i := range places {
		places[i] = nodePlace{clientHost: "127.0.0.1", routeHost: "127.0.0.1", client: freePort(t), route: freePort(t), monitor: freePort(t)}
	}
	return places
}

func startProcessCluster(t *testing.T, dir string, keys *natsauth.Keys) *cluster {
	t.Helper()
	return startProcessClusterAt(t, dir, keys, loopbackPlaces(t))
}

// startProcessClusterAt starts one node at each place.
func startProcessClusterAt(t *testing.T, dir string, keys *natsauth.Keys, places []nodePlace) *cluster {
	t.Helper()
	c := &cluster{keys: keys}
	routes := make([]string, len(places))
	for i, pl := range places {
		routes[i] = fmt.Sprintf("nats://%s:%d", pl.routeHost, pl.route)
	}
	for i, pl := range places {
		n := &node{name: fmt.Sprintf("n%d", i+1), host: pl.clientHost, netns: pl.netns, client: pl.client, monitor: pl.monitor}
		nodeDir := filepath.Join(dir, n.name)
		require.NoError(t, os.MkdirAll(nodeDir, 0o700))
		conf, err := natscluster.Node{
			Name: n.name, Peers: routes, StoreDir: filepath.Join(nodeDir, "js"),
			ClientListen:  fmt.Sprintf("%s:%d", pl.clientHost, pl.client),
			ClusterListen: fmt.Sprintf("%s:%d", pl.routeHost, pl.route),
			MonitorListen: fmt.Sprintf("%s:%d", pl.clientHost, pl.monitor),
		}.Config()
		require.NoError(t, err)
		trust, err := keys.ServerConfig(filepath.Join(nodeDir, "jwt"))
		require.NoError(t, err)
		n.conf, n.log = filepath.Join(nodeDir, "nats.conf"), filepath.Join(nodeDir, "nats.log")
		require.NoError(t, os.WriteFile(n.conf, []byte(conf+trust), 0o600))
		n.start(t)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			select {
			case <-n.exited:
			default:
				_ = n.cmd.Process.Kill()
				<-n.exited
			}
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("%s log ends with:\n%s", n.name, tail(n.log, 3000))
			}
		}
	})
	require.Eventually(t, func() bool { return c.metaLeader() != "" && c.allCurrent() }, 60*time.Second, 100*time.Millisecond,
		"the three processes form a cluster with a meta leader")
	return c
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

func (c *cluster) monitorURLs() []string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.monitorURL())
	}
	return u
}

// jsz reads the meta leader's name from a node's /jsz; false when the
// node does not answer.
func jsz(n *node) (leader string, ok bool) {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(n.monitorURL() + "/jsz")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var body struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.Meta == nil {
		return "", false
	}
	return body.Meta.Leader, true
}

// healthy asks a node's /healthz: JetStream current with the meta leader
// and every stream and consumer it holds caught up.
func healthy(n *node) bool {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(n.monitorURL() + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metaLeader is the name of JetStream's meta leader as the running nodes
// see it, or "".
func (c *cluster) metaLeader() string {
	for _, n := range c.nodes {
		if leader, ok := jsz(n); ok && leader != "" {
			return leader
		}
	}
	return ""
}

func (c *cluster) allCurrent() bool {
	for _, n := range c.nodes {
		if !healthy(n) {
			return false
		}
	}
	return true
}

func (c *cluster) byName(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// streamLeader is the node leading the pipeline's stream.
func (c *cluster) streamLeader(ctx context.Context, t *testing.T, p dataplane.Pipeline) string {
	t.Helper()
	info := c.streamInfo(ctx, t, p)
	require.Equal(t, 3, info.Config.Replicas, "the pipeline's stream has three replicas")
	require.NotNil(t, info.Cluster)
	return info.Cluster.Leader
}

// streamInfo asks the cluster about the pipeline's stream.
func (c *cluster) streamInfo(ctx context.Context, t *testing.T, p dataplane.Pipeline, opts ...jetstream.StreamInfoOpt) *jetstream.StreamInfo {
	t.Helper()
	creds, err := c.keys.TenantUser(p.Tenant, "node-loss-test")
	require.NoError(t, err)
	nc, err := nats.Connect(c.urls(), creds.Option())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	info, err := s.Info(ctx, opts...)
	require.NoError(t, err)
	return info
}

// nodeLoss is one run of the node-loss test, or of the partition test.
type nodeLoss struct {
	rate             float64
	duration, killAt time.Duration
	restartAt        time.Duration
	// victim picks the node to kill: "stream" (the leader of the
	// pipeline's stream), "meta" (JetStream's meta leader) or "ingress"
	// (the node the stack's connection to the tenant's account, on which
	// the webhook publishes, is connected to).
	victim string
	// partition runs each node in a network namespace of its own and,
	// instead of killing the victim at killAt and restarting it at
	// restartAt, cuts it off the other two and heals the cut
	// (partition_test.go).
	partition bool
}

// victims says what each kind of victim is.
var victims = map[string]string{
	"stream": "the stream's leader", "meta": "the meta leader", "ingress": "holding the webhook's connection",
}

// outcome of one message.
const (
	sentNot = iota
	got202
	got503
	gotOther
)

func TestWebhookThroughANodeLoss(t *testing.T) {
	runNodeLoss(t, nodeLoss{rate: 300, duration: 15 * time.Second, killAt: 5 * time.Second, restartAt: 10 * time.Second, victim: "stream"})
}

// TestWebhookThroughANodeLossLong is the long form: 3,000 msgs/s for a
// minute, once killing the stream's leader and once the meta leader's node.
func TestWebhookThroughANodeLossLong(t *testing.T) {
	if os.Getenv("VRSKY_LONG_TESTS") != "1" {
		t.Skip("set VRSKY_LONG_TESTS=1 to run the minute-long node-loss runs")
	}
	for _, victim := range []string{"meta", "stream"} {
		t.Run(victim+" leader", func(t *testing.T) {
			runNodeLoss(t, nodeLoss{rate: 3000, duration: 60 * time.Second, killAt: 20 * time.Second, restartAt: 40 * time.Second, victim: victim})
		})
	}
}

func runNodeLoss(t *testing.T, nl nodeLoss) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	// The stack reads its keys from the data directory; the nodes trust
	// the same ones.
	keys, err := natsauth.LoadOrCreateKeys(filepath.Join(dataDir, devstack.NATSKeysFile))
	require.NoError(t, err)
	var tn *testNet
	var c *cluster
	if nl.partition {
		tn = newTestNet(t, 3)
		c = startProcessClusterAt(t, filepath.Join(dir, "nats"), keys, tn.places())
	} else {
		c = startProcessCluster(t, filepath.Join(dir, "nats"), keys)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+2*nl.duration)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Config{
		DataDir: dataDir, HTTPAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", PostgresPort: 0, Version: "test",
		NATSURL: c.urls(), NATSReplicas: 3, NATSMonitorURLs: c.monitorURLs(),
		WebhookTenantRate: -1,
		Logger:            slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	ep := stack.Endpoints()
	require.Equal(t, c.urls(), ep.NATS)
	require.Equal(t, 3, ep.NATSReplicas)

	p := deploy(ctx, t, ep, dataDir)
	victim := c.streamLeader(ctx, t, p)
	switch nl.victim {
	case "meta":
		victim = c.metaLeader()
	case "ingress":
		victim = c.holding(t, "vrsky-dev/"+p.Tenant)
	}
	require.NotEmpty(t, victim)
	killed := c.byName(victim)
	require.NotNil(t, killed)
	fault, repair := "kill -9", "restarted"
	inject, undo := func() { killed.kill9(t) }, func() { killed.start(t) }
	if nl.partition {
		fault, repair = "cut off", "healed"
		i := slices.Index(c.nodes, killed)
		inject, undo = func() { tn.cut(t, i) }, func() { tn.heal(t, i) }
	}

	total := int(nl.rate * nl.duration.Seconds())
	outcomes := make([]atomic.Int32, total)
	took := make([]atomic.Int64, total) // nanoseconds from the intended send time to the answer
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
	hook := "http://" + ep.HTTP + "/v1/hooks/" + p.Tenant + "/" + p.Integration
	began := time.Now()
	chaos := make(chan struct{})
	go func() {
		defer close(chaos)
		time.Sleep(time.Until(began.Add(nl.killAt)))
		inject()
		t.Logf("%s: %s %s (%s)", time.Since(began).Round(time.Millisecond), fault, victim, victims[nl.victim])
		if nl.partition {
			watchCutOff(t, c, killed, began, began.Add(nl.restartAt))
		}
		time.Sleep(time.Until(began.Add(nl.restartAt)))
		undo()
		t.Logf("%s: %s %s", time.Since(began).Round(time.Millisecond), repair, victim)
	}()
	sem := make(chan struct{}, 512)
	var wg sync.WaitGroup
	for i := range total {
		time.Sleep(time.Until(began.Add(time.Duration(float64(i) / nl.rate * float64(time.Second)))))
		intended := began.Add(time.Duration(float64(i) / nl.rate * float64(time.Second)))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcomes[i].Store(post(client, hook, i))
			took[i].Store(int64(time.Since(intended)))
		}()
	}
	wg.Wait()
	<-chaos
	sendTook := time.Since(began)

	var accepted, unavailable, other int
	for i := range outcomes {
		switch outcomes[i].Load() {
		case got202:
			accepted++
		case got503:
			unavailable++
		default:
			other++
		}
	}
	// Every 202 must reach the file.
	var seen map[int]int
	var bad int
	drain := 60*time.Second + nl.duration
	require.Eventually(t, func() bool {
		seen, bad = readSeqs(t, dataDir, p.Tenant)
		for i := range outcomes {
			if outcomes[i].Load() == got202 && seen[i] == 0 {
				return false
			}
		}
		return true
	}, drain, 250*time.Millisecond, "every message answered 202 reaches the file")
	// What was stored though answered 503 may still be on its way.
	time.Sleep(2 * time.Second)
	seen, bad = readSeqs(t, dataDir, p.Tenant)

	var inFile, duplicates, storedDespite503 int
	dupAt := map[int]int{} // duplicates by second of sending
	for i := range outcomes {
		if n := seen[i]; n > 0 {
			inFile++
			duplicates += n - 1
			if n > 1 {
				dupAt[int(float64(i)/nl.rate)] += n - 1
			}
			if outcomes[i].Load() == got503 {
				storedDespite503++
			}
		} else {
			require.Equal(t, int32(got503), outcomes[i].Load(), "message %d is not in the file: its answer must have been 503", i)
		}
	}
	what := "node loss"
	if nl.partition {
		what = "partition"
	}
	t.Logf("%s (%s, %s, %.0f msgs/s for %s, %s at %s, %s at %s): sent %d in %s, 202 %d, 503 %d, other %d; in file %d (of them answered 503: %d), duplicates %d, malformed lines %d",
		what, victim, victims[nl.victim], nl.rate, nl.duration, fault, nl.killAt, repair, nl.restartAt, total, sendTook.Round(time.Millisecond),
		accepted, unavailable, other, inFile, storedDespite503, duplicates, bad)
	t.Logf("503s by second of sending: %s", timeline(outcomes, nl.rate))
	t.Logf("202 latency from the intended send time: %s", latencies(outcomes, took))
	if duplicates > 0 {
		t.Logf("duplicates by second of sending: %v", dupAt)
	}
	require.Zero(t, other, "every answer is 202 or 503")
	require.Zero(t, bad, "every line is a message the test sent, transformed")
	require.Greater(t, accepted, total/2, "most messages are accepted through a node loss")
	// A healed node's streams catch up from their leaders; on a loaded
	// 2-core machine a catch-up that has to start again (the server logs
	// "will retry") took over a minute once, so the test allows two.
	rejoinFrom := time.Now()
	require.Eventually(t, func() bool { return c.metaLeader() != "" && c.allCurrent() }, 2*time.Minute, 200*time.Millisecond,
		"the %s node rejoins", repair)
	t.Logf("the %s node was current again %s after the load ended", repair, time.Since(rejoinFrom).Round(time.Second))
	if nl.partition {
		// A duplicate in the file is fine if it is a second delivery of a
		// message stored once; a second stored copy would mean the
		// Idempotency-Key (the message ID) did not hold. The stream's
		// sequences count the messages and the keys' records (ADR 0034).
		info := c.streamInfo(ctx, t, p, jetstream.WithSubjectFilter(p.KeySubjects()))
		var records uint64
		for _, n := range info.State.Subjects {
			records += n
		}
		stored := info.State.LastSeq - records
		t.Logf("the stream stored %d messages (its last sequence less %d key records); distinct messages in the file, with the warm-up one: %d", stored, records, inFile+1)
		// Every stored copy of a message reaches the file, so with no
		// duplicate in it each message was stored once. The count decides
		// only when there is a duplicate to explain: a replicated stream
		// can take sequences for neither (its servers skip sequences
		// across leader changes), and once under load the count was off.
		if duplicates > 0 {
			require.Equal(t, uint64(inFile+1), stored, "the stream stored each message once, so every duplicate in the file is a redelivery")
		}
		select {
		case <-killed.exited:
			t.Fatalf("the cut-off node %s exited: a partition must not stop it", victim)
		default:
		}
	}
}

// latencies summarises how long the 202s took.
func latencies(outcomes []atomic.Int32, took []atomic.Int64) string {
	var d []time.Duration
	for i := range outcomes {
		if outcomes[i].Load() == got202 {
			d = append(d, time.Duration(took[i].Load()))
		}
	}
	if len(d) == 0 {
		return "none"
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %s, p99 %s, p99.9 %s, max %s", at(0.5), at(0.99), at(0.999), d[len(d)-1].Round(time.Millisecond))
}

// timeline counts the 503s of each second of sending.
func timeline(outcomes []atomic.Int32, rate float64) string {
	perSecond := int(rate)
	var b strings.Builder
	for start := 0; start < len(outcomes); start += perSecond {
		n := 0
		for i := start; i < min(start+perSecond, len(outcomes)); i++ {
			if outcomes[i].Load() == got503 {
				n++
			}
		}
		fmt.Fprintf(&b, "%d ", n)
	}
	return strings.TrimSpace(b.String())
}

// post sends message i with an Idempotency-Key and returns its outcome.
func post(client *http.Client, url string, i int) int32 {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"seq":%d}`, i)))
	if err != nil {
		return gotOther
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("node-loss-%d", i))
	resp, err := client.Do(req)
	if err != nil {
		return gotOther
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		return got202
	case http.StatusServiceUnavailable:
		return got503
	default:
		return gotOther
	}
}

// readSeqs counts each seq in the tenant's output files (in every
// producer's directory); bad counts lines that are not a sent message
// with its transform applied.
func readSeqs(t *testing.T, dataDir, tenant string) (map[int]int, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "files", tenant, "*", "*"))
	require.NoError(t, err)
	seen := map[int]int{}
	bad := 0
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			var m struct {
				Seq     *int `json:"seq"`
				Doubled *int `json:"doubled"`
			}
			if json.Unmarshal(line, &m) != nil || m.Seq == nil || m.Doubled == nil || *m.Doubled != 2**m.Seq {
				bad++
				continue
			}
			seen[*m.Seq]++
		}
		fh.Close()
	}
	return seen, bad
}

// deploy creates the tenant through the API and runs webhook →
// json-transform → file for it.
func deploy(ctx context.Context, t *testing.T, ep devstack.Endpoints, dataDir string) dataplane.Pipeline {
	t.Helper()
	adminKey, err := os.ReadFile(filepath.Join(dataDir, devstack.AdminKeyFile))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+ep.HTTP+"/v1/tenants", strings.NewReader(`{"id":"acme","name":"Acme"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminKey)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, "http://"+ep.HTTP+"/v1/tenants/acme", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminKey)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var got struct {
			Status string `json:"status"`
		}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&got) == nil && got.Status == "active"
	}, 60*time.Second, 50*time.Millisecond, "the tenant's provisioning finishes")

	nc, err := nats.Connect(ep.NATS, ep.NATSOptions()...)
	require.NoError(t, err)
	defer nc.Close()
	raw, err := jetstream.New(nc)
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, natscluster.WithReplicas(raw, ep.NATSReplicas))
	require.NoError(t, err)
	in, err := spec.ParseYAML([]byte(`
name: orders
consumer: { connector: http-webhook }
steps:
  - connector: json-transform
    config: { set: { doubled: "seq * 2" } }
producers:
  out: { connector: file, config: { dir: out } }
`))
	require.NoError(t, err)
	d := dataplane.Desired{Tenant: "acme", Integration: "orders", Version: 1, Status: dataplane.DesiredRunning, Spec: in}
	var st dataplane.Status
	require.NoError(t, state.PutDesired(ctx, d))
	require.Eventually(t, func() bool {
		st, _, _ = state.GetStatus(ctx, d.Pipeline())
		return st.Status == dataplane.StatusRunning
	}, 60*time.Second, 50*time.Millisecond, "status: %+v", st)
	// Warm up: one message through.
	require.Eventually(t, func() bool {
		return post(http.DefaultClient, "http://"+ep.HTTP+"/v1/hooks/acme/orders", -1) == got202
	}, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		seen, _ := readSeqs(t, dataDir, "acme")
		return seen[-1] == 1
	}, 30*time.Second, 50*time.Millisecond)
	return d.Pipeline()
}
