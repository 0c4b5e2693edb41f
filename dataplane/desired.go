package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// Desired statuses.
const (
	DesiredRunning = "running"
	DesiredStopped = "stopped"
)

// Desired is what the control plane wants a pipeline to be.
type Desired struct {
	Tenant      string           `json:"tenant"`
	Integration string           `json:"integration"`
	Version     int              `json:"version"`
	Status      string           `json:"status"`
	Spec        spec.Integration `json:"spec"`
	// WebhookMaxBytes overrides the ingress body limit (0 = default).
	WebhookMaxBytes int64 `json:"webhook_max_bytes,omitempty"`
}

// Pipeline returns the desired pipeline's identity.
func (d Desired) Pipeline() Pipeline { return Pipeline{Tenant: d.Tenant, Integration: d.Integration} }

// Reported statuses.
const (
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusDegraded = "degraded"
)

// Status is what a runner reports about a pipeline.
type Status struct {
	Tenant      string    `json:"tenant"`
	Integration string    `json:"integration"`
	Version     int       `json:"version"`
	Status      string    `json:"status"`
	LastError   string    `json:"last_error,omitempty"`
	Runner      string    `json:"runner"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// State is the KV side of the hot path: desired state, status,
// per-message attempt counts and the run requests of scheduled pipelines.
type State struct {
	js       jetstream.JetStream
	Desired  jetstream.KeyValue
	Status   jetstream.KeyValue
	Attempts jetstream.KeyValue
	// Runs holds scheduled pipelines' run requests and results (RunsBucket).
	Runs jetstream.KeyValue
	// Counts holds what stages finished without a consumer of their own
	// (CountsBucket).
	Counts jetstream.KeyValue
	// Egress holds the tenants' egress policies (EgressBucket).
	Egress *EgressPolicies
	// IngressQuotas holds the tenants' own ingress quotas
	// (TenantRatesBucket).
	IngressQuotas *IngressQuotas
}

// OpenState creates or opens the hot path's KV buckets.
func OpenState(ctx context.Context, js jetstream.JetStream) (*State, error) {
	desired, err := OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: DesiredStateBucket, History: 5})
	if err != nil {
		return nil, err
	}
	status, err := OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: StatusBucket, History: 1})
	if err != nil {
		return nil, err
	}
	attempts, err := OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: MessageStateBucket, History: 1, TTL: DLQRetention})
	if err != nil {
		return nil, err
	}
	runs, err := openRuns(ctx, js)
	if err != nil {
		return nil, err
	}
	counts, err := openCounts(ctx, js)
	if err != nil {
		return nil, err
	}
	egress := &EgressPolicies{JS: js}
	if _, err := egress.bucket(ctx); err != nil {
		return nil, err
	}
	quotas := &IngressQuotas{JS: js}
	if _, err := quotas.bucket(ctx); err != nil {
		return nil, err
	}
	return &State{js: js, Desired: desired, Status: status, Attempts: attempts, Runs: runs, Counts: counts, Egress: egress, IngressQuotas: quotas}, nil
}

// PutDesired writes a pipeline's desired state.
func (s *State) PutDesired(ctx context.Context, d Desired) error {
	if err := d.Pipeline().Validate(); err != nil {
		return err
	}
	if err := d.Spec.Validate(); err != nil {
		return err
	}
	if d.Status != DesiredRunning && d.Status != DesiredStopped {
		return fmt.Errorf("desired status %q: want %q or %q", d.Status, DesiredRunning, DesiredStopped)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := s.Desired.Put(ctx, d.Pipeline().Key(), b); err != nil {
		return fmt.Errorf("write desired state of %s: %w", d.Pipeline(), err)
	}
	return nil
}

// DeleteDesired removes a pipeline: runners stop it and delete its stream.
// Its run requests and results are forgotten.
func (s *State) DeleteDesired(ctx context.Context, p Pipeline) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.Desired.Delete(ctx, p.Key()); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete desired state of %s: %w", p, err)
	}
	if err := s.ForgetCounts(ctx, p); err != nil {
		return err
	}
	return s.forgetRuns(ctx, p)
}

// GetDesired reads a pipeline's desired state; ok is false when there is none.
func (s *State) GetDesired(ctx context.Context, p Pipeline) (d Desired, ok bool, err error) {
	if err := p.Validate(); err != nil {
		return d, false, err
	}
	entry, err := s.Desired.Get(ctx, p.Key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("read desired state of %s: %w", p, err)
	}
	if err := json.Unmarshal(entry.Value(), &d); err != nil {
		return d, false, fmt.Errorf("decode desired state of %s: %w", p, err)
	}
	return d, true, nil
}

// GetStatus reads what the runners last reported for a pipeline.
func (s *State) GetStatus(ctx context.Context, p Pipeline) (st Status, ok bool, err error) {
	entry, err := s.Status.Get(ctx, p.Key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read status of %s: %w", p, err)
	}
	if err := json.Unmarshal(entry.Value(), &st); err != nil {
		return st, false, fmt.Errorf("decode status of %s: %w", p, err)
	}
	return st, true, nil
}

// PutStatus writes what a runner reports about a pipeline.
func (s *State) PutStatus(ctx context.Context, st Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.Status.Put(ctx, Pipeline{st.Tenant, st.Integration}.Key(), b)
	return err
}

// DesiredCache keeps every pipeline's desired state in memory, following the
// bucket, so the webhook ingress can look pipelines up without a KV read
// per request.
type DesiredCache struct {
	mu      sync.RWMutex
	byKey   map[string]Desired
	watcher jetstream.KeyWatcher
	ready   chan struct{}
}

// WatchDesired starts a cache that follows the desired-state bucket until
// Stop. It returns once the current values are loaded, or when ctx ends.
func WatchDesired(ctx context.Context, state *State) (*DesiredCache, error) {
	w, err := state.Desired.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch desired state: %w", err)
	}
	c := &DesiredCache{byKey: make(map[string]Desired), watcher: w, ready: make(chan struct{})}
	go c.follow()
	select {
	case <-c.ready:
		return c, nil
	case <-ctx.Done():
		_ = w.Stop()
		return nil, ctx.Err()
	}
}

func (c *DesiredCache) follow() {
	initial := true
	for entry := range c.watcher.Updates() {
		if entry == nil {
			if initial {
				close(c.ready)
				initial = false
			}
			continue
		}
		c.mu.Lock()
		var d Desired
		if entry.Operation() == jetstream.KeyValuePut && json.Unmarshal(entry.Value(), &d) == nil {
			c.byKey[entry.Key()] = d
		} else {
			delete(c.byKey, entry.Key())
		}
		c.mu.Unlock()
	}
}

// Lookup returns a pipeline's desired state.
func (c *DesiredCache) Lookup(p Pipeline) (Desired, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.byKey[p.Key()]
	return d, ok
}

// Stop stops following the bucket.
func (c *DesiredCache) Stop() { _ = c.watcher.Stop() }
