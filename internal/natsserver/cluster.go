package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vrsky/vrsky/internal/natsauth"
)

// ClusterOptions configure an embedded cluster of nodes in this process.
type ClusterOptions struct {
	// Nodes is how many servers run: 3 (or 5) for a JetStream cluster.
	Nodes int
	// Addr is host:port of the first node's clients; port 0 picks a free
	// port. The other nodes listen on free ports of the same host.
	Addr string
	// StoreDir holds each node's store in StoreDir/node-N; it survives
	// restarts.
	StoreDir string
	// Name prefixes the nodes' names and names the cluster ("vrsky-dev").
	Name string
	// Accounts and Logger are as in Options; every node trusts the keys.
	Accounts *natsauth.Keys
	Logger   *slog.Logger
	// Monitor serves each node's monitoring endpoints on a free port.
	Monitor bool
}

// Cluster is a running embedded cluster.
type Cluster struct {
	opts  ClusterOptions
	mu    sync.Mutex
	nodes []*Server
	conf  []Options // each node's options, to restart it
}

// StartCluster starts opts.Nodes servers routed to each other and returns
// once JetStream has a meta leader and every node is current with it.
func StartCluster(ctx context.Context, opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Nodes < 3 || opts.Nodes%2 == 0 || opts.Nodes > 7 {
		return nil, fmt.Errorf("start nats cluster: %d nodes; want 3, 5 or 7 (JetStream needs a majority)", opts.Nodes)
	}
	if opts.Name == "" {
		opts.Name = "vrsky-dev"
	}
	host, _, err := splitAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	routePorts, err := freePorts(host, opts.Nodes)
	if err != nil {
		return nil, fmt.Errorf("start nats cluster: %w", err)
	}
	routes := make([]string, opts.Nodes)
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("nats://%s", net.JoinHostPort(host, fmt.Sprint(p)))
	}
	c := &Cluster{opts: opts}
	defer func() {
		if err != nil {
			c.Shutdown()
		}
	}()
	for i := range opts.Nodes {
		addr := net.JoinHostPort(host, "0")
		if i == 0 && opts.Addr != "" {
			addr = opts.Addr
		}
		node := Options{
			Addr:     addr,
			StoreDir: filepath.Join(opts.StoreDir, fmt.Sprintf("node-%d", i+1)),
			Logger:   opts.Logger,
			Accounts: opts.Accounts,
			Name:     fmt.Sprintf("%s-%d", opts.Name, i+1),
			Cluster: &ClusterNode{Name: opts.Name, Addr: net.JoinHostPort(host, fmt.Sprint(routePorts[i])),
				Routes: routes},
		}
		if opts.Monitor {
			node.MonitorAddr = net.JoinHostPort(host, "0")
		}
		srv, err := Start(ctx, node)
		if err != nil {
			return nil, err
		}
		// A restarted node keeps its client port, so that the URL list
		// the clients hold stays right.
		node.Addr = strings.TrimPrefix(srv.ClientURL(), "nats://")
		c.nodes = append(c.nodes, srv)
		c.conf = append(c.conf, node)
	}
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// WaitReady waits until the running nodes have one JetStream meta leader
// and every running node is current with it.
func (c *Cluster) WaitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	for {
		c.mu.Lock()
		leaders, current, running := 0, 0, 0
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			running++
			if n.ns.JetStreamIsCurrent() {
				current++
			}
			if n.ns.JetStreamIsLeader() {
				leaders++
			}
		}
		c.mu.Unlock()
		if leaders == 1 && current == running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats cluster: no JetStream meta leader (%d leaders, %d of %d nodes current)", leaders, current, running)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ClientURLs are the nodes' client URLs, comma-separated as nats.Connect
// and VRSKY_NATS_URL take them.
func (c *Cluster) ClientURLs() string {
	urls := make([]string, len(c.conf))
	for i, n := range c.conf {
		urls[i] = "nats://" + n.Addr
	}
	return strings.Join(urls, ",")
}

// MonitorURLs are the running nodes' monitoring URLs (none without
// ClusterOptions.Monitor).
func (c *Cluster) MonitorURLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var urls []string
	for _, n := range c.nodes {
		if n != nil && n.MonitorURL() != "" {
			urls = append(urls, n.MonitorURL())
		}
	}
	return urls
}

// Leader is the index of the node that leads JetStream's meta group, or
// -1 while there is none.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n != nil && n.ns.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StopNode shuts node i down, as a node loss; RestartNode brings it back.
func (c *Cluster) StopNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) || c.nodes[i] == nil {
		return fmt.Errorf("nats cluster: node %d is not running", i)
	}
	c.nodes[i].Shutdown()
	c.nodes[i] = nil
	return nil
}

// RestartNode starts node i again on its client port and store.
func (c *Cluster) RestartNode(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) || c.nodes[i] != nil {
		return fmt.Errorf("nats cluster: node %d is running or unknown", i)
	}
	srv, err := Start(ctx, c.conf[i])
	if err != nil {
		return err
	}
	c.nodes[i] = srv
	return nil
}

// Healthy reports whether every node runs with JetStream.
func (c *Cluster) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for i, n := range c.nodes {
		if n == nil {
			errs = append(errs, fmt.Errorf("node %d stopped", i+1))
		} else if err := n.Healthy(); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops every node; it is idempotent.
func (c *Cluster) Shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n != nil {
			n.Shutdown()
			c.nodes[i] = nil
		}
	}
}

// freePorts returns n ports of host that were free a moment ago. Route
// ports must be known before the nodes start, since each node names all.
func freePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var open []net.Listener
	defer func() {
		for _, l := range open {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		open = append(open, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
