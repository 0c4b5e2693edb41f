package natsauth

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/natscluster"
)

// Pool keeps one connection per tenant account for the platform's own work
// in that account: publishing what the webhook ingress takes in, running
// pipelines, reading the DLQ. It implements dataplane.Accounts.
type Pool struct {
	// Replicas is the replica count of the streams and KV buckets created
	// through the pool (natscluster.WithReplicas); set it before first use.
	Replicas int

	url  string
	keys *Keys
	name string
	opts []nats.Option

	mu     sync.Mutex
	conns  map[string]*nats.Conn
	js     map[string]jetstream.JetStream
	closed bool
}

// NewPool returns a pool connecting to url (one server, or a cluster's
// servers comma-separated); name prefixes the connections' names and opts
// are added to every connection, after natscluster.ClientOptions.
func NewPool(url string, keys *Keys, name string, opts ...nats.Option) *Pool {
	return &Pool{url: url, keys: keys, name: name, opts: opts,
		conns: make(map[string]*nats.Conn), js: make(map[string]jetstream.JetStream)}
}

// JetStream returns the JetStream context of tenant's account, connecting
// on first use.
func (p *Pool) JetStream(_ context.Context, tenant string) (jetstream.JetStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("nats pool closed")
	}
	if js, ok := p.js[tenant]; ok && !p.conns[tenant].IsClosed() {
		return js, nil
	}
	creds, err := p.keys.TenantUser(tenant, p.name)
	if err != nil {
		return nil, err
	}
	opts := append(append(natscluster.ClientOptions(p.name+"/"+tenant), creds.Option()), p.opts...)
	nc, err := nats.Connect(p.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the nats account of tenant %s: %w", tenant, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.conns[tenant], p.js[tenant] = nc, natscluster.WithReplicas(js, p.Replicas)
	return p.js[tenant], nil
}

// Forget closes tenant's connection, if any (after its account is deleted).
func (p *Pool) Forget(tenant string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if nc, ok := p.conns[tenant]; ok {
		nc.Close()
		delete(p.conns, tenant)
		delete(p.js, tenant)
	}
}

// Close drains every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for tenant, nc := range p.conns {
		_ = nc.Drain()
		delete(p.conns, tenant)
		delete(p.js, tenant)
	}
}
