package natscluster

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplicasEnv names the environment variable holding the replica count of
// every stream and KV bucket VRSky creates.
const ReplicasEnv = "VRSKY_NATS_REPLICAS"

// MaxReplicas is the largest replica count JetStream accepts.
const MaxReplicas = 5

// ReplicasFromEnv reads ReplicasEnv: 1 when it is unset, else 1 to
// MaxReplicas.
func ReplicasFromEnv() (int, error) {
	return ParseReplicas(os.Getenv(ReplicasEnv))
}

// ParseReplicas parses a replica count: "" is 1; anything else must be a
// whole number from 1 to MaxReplicas.
func ParseReplicas(s string) (int, error) {
	n, err := strconv.Atoi(cmp.Or(s, "1"))
	if err != nil || n < 1 || n > MaxReplicas {
		return 0, fmt.Errorf("%s: %q is not a replica count from 1 to %d", ReplicasEnv, s, MaxReplicas)
	}
	return n, nil
}

// WithReplicas returns js, except that every stream, KV bucket and object
// store it creates or updates without a replica count of its own gets n
// replicas. This is where the one replica setting of a role reaches every
// stream and bucket: the code creating them states what it stores, the
// role states how many copies the cluster keeps. Durable consumers take
// their stream's count. n ≤ 1 returns js unchanged.
func WithReplicas(js jetstream.JetStream, n int) jetstream.JetStream {
	if n <= 1 || js == nil {
		return js
	}
	return replicated{JetStream: js, n: n}
}

// replicated sets the replica count on every create and update.
type replicated struct {
	jetstream.JetStream
	n int
}

func (r replicated) replicas(have int) int { return cmp.Or(have, r.n) }

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateStream(ctx, cfg)
}

func (r replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.UpdateStream(ctx, cfg)
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateKeyValue(ctx, cfg)
}

func (r replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.UpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateObjectStore(ctx, cfg)
}

func (r replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.UpdateObjectStore(ctx, cfg)
}

func (r replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(cfg.Replicas)
	return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
}
