package hotpath

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// Lease timing: a holder refreshes every leaseRefresh; a lease not refreshed
// for leaseTTL expires and another runner takes it.
const (
	leaseTTL     = 15 * time.Second
	leaseRefresh = 5 * time.Second
)

// openLeases creates or opens the lease bucket.
func openLeases(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (jetstream.KeyValue, error) {
	return dataplane.OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: dataplane.LeaseBucket, TTL: ttl, History: 1})
}

// holdLease runs fn while this runner holds the lease on key, so that only
// one runner at a time reads a singleton source (a watched directory, a
// replication slot). It waits for the lease, renews it while fn runs, and
// cancels fn's context as soon as the lease cannot be renewed. It returns
// when ctx ends.
func holdLease(ctx context.Context, kv jetstream.KeyValue, key, holder string, refresh time.Duration, fn func(context.Context)) {
	for ctx.Err() == nil {
		rev, err := kv.Create(ctx, key, []byte(holder))
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(refresh):
				continue
			}
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); fn(runCtx) }()
		tick := time.NewTicker(refresh)
	renew:
		for {
			select {
			case <-done:
				break renew
			case <-tick.C:
				if rev, err = kv.Update(ctx, key, []byte(holder), rev); err != nil {
					break renew // lost it: someone else may hold it now
				}
			}
		}
		tick.Stop()
		cancel()
		<-done
		// Release so another runner need not wait for the TTL.
		_ = kv.Delete(context.Background(), key, jetstream.LastRevision(rev))
	}
}
