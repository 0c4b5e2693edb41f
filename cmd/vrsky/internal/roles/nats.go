package roles

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
)

// NATS are a role's connections to NATS.
type NATS struct {
	// Conn and JS are the platform account's (or the only account's).
	Conn *nats.Conn
	JS   jetstream.JetStream
	// Accounts gives each tenant's JetStream.
	Accounts dataplane.Accounts
	// Admin pushes and deletes tenant accounts; nil when every tenant
	// shares one account.
	Admin *natsauth.Admin
	// Close drains every connection.
	Close func()
}

// ConnectNATS connects to url (one server, or a cluster's servers
// comma-separated) as name. With keys, the server runs in operator mode:
// the role connects to the platform account, to the system account (to
// manage tenant accounts) and to each tenant's account as it needs them.
// Without keys every tenant shares the one account. Every stream and KV
// bucket created through the connections gets replicas copies
// (natscluster.WithReplicas; ≤ 1: one). The connections reconnect without
// limit (natscluster.ClientOptions); opts are added to every one of them
// (the dev stack's ping the server it runs seldom).
func ConnectNATS(url string, keys *natsauth.Keys, name string, replicas int, opts ...nats.Option) (_ NATS, err error) {
	var closers []func()
	n := NATS{Close: func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	connect := func(auth ...nats.Option) (*nats.Conn, error) {
		nc, err := nats.Connect(url, slices.Concat(natscluster.ClientOptions(name), auth, opts)...)
		if err != nil {
			return nil, fmt.Errorf("connect to nats: %w", err)
		}
		closers = append(closers, func() { _ = nc.Drain() })
		return nc, nil
	}
	var platform []nats.Option
	if keys != nil {
		creds, err := keys.PlatformUser(name)
		if err != nil {
			return n, err
		}
		platform = append(platform, creds.Option())
	}
	if n.Conn, err = connect(platform...); err != nil {
		return n, err
	}
	if n.JS, err = jetstream.New(n.Conn); err != nil {
		return n, fmt.Errorf("jetstream: %w", err)
	}
	n.JS = natscluster.WithReplicas(n.JS, replicas)
	if keys == nil {
		return n, n.placeAccounts(dataplane.SharedAccount{JS: n.JS}, name, &closers)
	}
	sys, err := keys.SystemUser(name)
	if err != nil {
		return n, err
	}
	sysConn, err := connect(sys.Option())
	if err != nil {
		return n, err
	}
	n.Admin = natsauth.NewAdmin(keys, sysConn)
	pool := natsauth.NewPool(url, keys, name, opts...)
	pool.Replicas = replicas
	closers = append(closers, pool.Close)
	return n, n.placeAccounts(pool, name, &closers)
}

// placementsWait bounds the first read of the placements bucket.
const placementsWait = 30 * time.Second

// placeAccounts sets n.Accounts to shared resolved through each tenant's
// placement (dataplane.PlacedAccounts).
func (n *NATS) placeAccounts(shared dataplane.Accounts, name string, closers *[]func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), placementsWait)
	defer cancel()
	kv, err := dataplane.OpenPlacements(ctx, n.JS)
	if err != nil {
		return err
	}
	placed, err := dataplane.NewPlacedAccounts(ctx, kv, shared, name)
	if err != nil {
		return fmt.Errorf("follow tenant placements: %w", err)
	}
	*closers = append(*closers, placed.Close)
	n.Accounts = placed
	return nil
}
