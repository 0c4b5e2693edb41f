package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/spec"
)

// OpenPlacements creates or opens the placements bucket in the platform
// account.
func OpenPlacements(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	return OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: PlacementsBucket, History: 1})
}

// PutPlacement mirrors p into the placements bucket; the shared placement
// of a tenant that has no dedicated instance deletes the key.
func PutPlacement(ctx context.Context, kv jetstream.KeyValue, p Placement) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.AllShared() && p.Dedicated == nil {
		return DeletePlacement(ctx, kv, p.Tenant)
	}
	p.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, p.Tenant, b); err != nil {
		return fmt.Errorf("put placement of %s: %w", p.Tenant, err)
	}
	return nil
}

// DeletePlacement removes a tenant's placement: it is Shared again.
func DeletePlacement(ctx context.Context, kv jetstream.KeyValue, tenant string) error {
	if !spec.ValidName(tenant) {
		return fmt.Errorf("invalid tenant name %q", tenant)
	}
	if err := kv.Delete(ctx, tenant); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete placement of %s: %w", tenant, err)
	}
	return nil
}

// PlacementOf decodes a placements-bucket entry: a deleted key, or one
// that does not decode to a valid placement of its tenant, is Shared.
func PlacementOf(entry jetstream.KeyValueEntry) Placement {
	tenant := entry.Key()
	var p Placement
	if entry.Operation() != jetstream.KeyValuePut || json.Unmarshal(entry.Value(), &p) != nil ||
		p.Tenant != tenant || p.Validate() != nil {
		return SharedPlacement(tenant)
	}
	return p
}

// LocatedAccounts are Accounts that know where each tenant is placed:
// JetStream gives the tenant's Write location, At any location its
// placement names. Runners use At to consume every location a placement
// lists.
type LocatedAccounts interface {
	Accounts
	At(ctx context.Context, p Placement, loc Location) (jetstream.JetStream, error)
}

// PlacedAccounts resolves each tenant's JetStream through its placement:
// Shared gives the tenant's account on the platform cluster (through
// Shared), Dedicated a connection of this process to the tenant's own
// instance, opened on first use and closed when the tenant leaves it. It
// follows the placements bucket until Close.
type PlacedAccounts struct {
	// Shared gives each tenant's account on the platform cluster.
	Shared Accounts
	// Name names this process's connections to dedicated instances.
	Name string

	watcher jetstream.KeyWatcher
	ready   chan struct{}

	mu        sync.Mutex
	placed    map[string]Placement
	dedicated map[string]*instanceConn
	closed    bool
}

// instanceConn is a connection to one tenant's dedicated instance.
type instanceConn struct {
	instance Instance
	nc       *nats.Conn
	js       jetstream.JetStream
}

// NewPlacedAccounts follows the placements bucket kv. It returns once the
// current placements are loaded, or when ctx ends.
func NewPlacedAccounts(ctx context.Context, kv jetstream.KeyValue, shared Accounts, name string) (*PlacedAccounts, error) {
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch placements: %w", err)
	}
	a := &PlacedAccounts{Shared: shared, Name: name, watcher: w, ready: make(chan struct{}),
		placed: make(map[string]Placement), dedicated: make(map[string]*instanceConn)}
	go a.follow()
	select {
	case <-a.ready:
		return a, nil
	case <-ctx.Done():
		_ = w.Stop()
		return nil, ctx.Err()
	}
}

func (a *PlacedAccounts) follow() {
	initial := true
	for entry := range a.watcher.Updates() {
		if entry == nil {
			if initial {
				close(a.ready)
				initial = false
			}
			continue
		}
		p := PlacementOf(entry)
		a.mu.Lock()
		if p.AllShared() {
			delete(a.placed, p.Tenant)
		} else {
			a.placed[p.Tenant] = p
		}
		if c := a.dedicated[p.Tenant]; c != nil && (p.Dedicated == nil || !sameInstance(c.instance, *p.Dedicated)) {
			c.nc.Close() // it left its instance, or the instance moved
			delete(a.dedicated, p.Tenant)
		}
		a.mu.Unlock()
	}
}

// Placement returns the tenant's placement as this process knows it.
func (a *PlacedAccounts) Placement(tenant string) Placement {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.placed[tenant]; ok {
		return p
	}
	return SharedPlacement(tenant)
}

// JetStream returns the JetStream of the tenant's Write location.
func (a *PlacedAccounts) JetStream(ctx context.Context, tenant string) (jetstream.JetStream, error) {
	p := a.Placement(tenant)
	return a.At(ctx, p, p.Write)
}

// At returns the JetStream of p's tenant at loc.
func (a *PlacedAccounts) At(ctx context.Context, p Placement, loc Location) (jetstream.JetStream, error) {
	switch {
	case loc == Shared:
		return a.Shared.JetStream(ctx, p.Tenant)
	case loc != Dedicated:
		return nil, fmt.Errorf("unknown location %q", loc)
	case p.Dedicated == nil:
		return nil, fmt.Errorf("tenant %s has no dedicated instance", p.Tenant)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("placed accounts closed")
	}
	if c := a.dedicated[p.Tenant]; c != nil && sameInstance(c.instance, *p.Dedicated) && !c.nc.IsClosed() {
		return c.js, nil
	}
	if c := a.dedicated[p.Tenant]; c != nil {
		c.nc.Close()
		delete(a.dedicated, p.Tenant)
	}
	inst := *p.Dedicated
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	opts := append(natscluster.ClientOptions(a.Name+"/"+p.Tenant+"/dedicated"), nats.UserInfo(inst.User, inst.Password))
	// Connect even while the instance is down: the connection keeps
	// trying, and stores answer "unavailable" until it is back.
	opts = append(opts, nats.RetryOnFailedConnect(true))
	nc, err := nats.Connect(strings.Join(inst.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the dedicated nats of tenant %s: %w", p.Tenant, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	a.dedicated[p.Tenant] = &instanceConn{instance: inst, nc: nc, js: js}
	return js, nil
}

func sameInstance(a, b Instance) bool {
	return slices.Equal(a.URLs, b.URLs) && a.User == b.User && a.Password == b.Password
}

// Close stops following the bucket and closes the connections to
// dedicated instances.
func (a *PlacedAccounts) Close() {
	_ = a.watcher.Stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for tenant, c := range a.dedicated {
		_ = c.nc.Drain()
		delete(a.dedicated, tenant)
	}
}
