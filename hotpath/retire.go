package hotpath

import (
	"context"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// retireTimeout bounds how long a deleted integration's consumer may take to
// release what it holds at its source.
const retireTimeout = 30 * time.Second

// retire lets a deleted pipeline's consumer release what it holds at its
// source — a replication slot keeping the write-ahead log, a publication —
// in the background. last is the pipeline's last desired state when this
// runner ran it; otherwise it is read from the bucket's history, so an
// integration deleted while stopped is retired too. Every runner does this;
// sdk.Retirer makes it idempotent. Once retired, the key's deletion marker
// (revision rev) is purged, unless the integration was created again since,
// so that runners starting later do not retire it again.
func (r *Runner) retire(ctx context.Context, d deps, state *dataplane.State, key string, rev uint64, last *dataplane.Desired) {
	r.retiring.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, retireTimeout)
		defer cancel()
		if !retireConsumer(ctx, d, state, key, last) {
			return
		}
		_ = state.Desired.Purge(ctx, key, jetstream.LastRevision(rev))
	})
}

// retireConsumer builds the deleted pipeline's consumer and retires it; it
// reports false when the consumer could not be built or retired, so that
// the retirement is tried again later.
func retireConsumer(ctx context.Context, d deps, state *dataplane.State, key string, last *dataplane.Desired) bool {
	if last == nil {
		if last = lastDesired(ctx, state, key); last == nil {
			return true
		}
	}
	c := last.Spec.Consumer.Connector
	conn, ok := d.catalog.Lookup(c, sdk.KindConsumer)
	if !ok || conn.Ingress {
		return true
	}
	p := last.Pipeline()
	log := d.log.With("tenant", p.Tenant, "integration", p.Integration, "stage", "consumer")
	root := ""
	if d.fileRoot != "" {
		root = filepath.Join(d.fileRoot, p.Tenant)
	}
	env, err := d.tenantEnv(ctx, p, root)
	if err != nil {
		log.Warn("cannot build the deleted integration's consumer to retire it", "error", err)
		return false
	}
	env.Name, env.Logger = "consumer", log
	built, err := conn.Build(ctx, env, last.Spec.Consumer.Config)
	if err != nil {
		log.Warn("cannot build the deleted integration's consumer to retire it", "error", err)
		return false
	}
	if closer, ok := built.(interface{ Close(context.Context) error }); ok {
		defer func() { _ = closer.Close(context.WithoutCancel(ctx)) }()
	}
	retirer, ok := built.(sdk.Retirer)
	if !ok {
		return true
	}
	if err := retirer.Retire(ctx); err != nil {
		log.Warn("the deleted integration's consumer did not retire", "error", err)
		return false
	}
	log.Info("the deleted integration's consumer retired")
	return true
}

// lastDesired returns the last desired state written under key before it
// was deleted, or nil.
func lastDesired(ctx context.Context, state *dataplane.State, key string) *dataplane.Desired {
	history, err := state.Desired.History(ctx, key)
	if err != nil {
		return nil
	}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Operation() != jetstream.KeyValuePut {
			continue
		}
		var d dataplane.Desired
		if json.Unmarshal(history[i].Value(), &d) != nil || d.Pipeline().Key() != key {
			return nil
		}
		return &d
	}
	return nil
}

// isIngress reports whether consumer is an ingress connector
// (sdk.Connector.Ingress), which the API's ingress serves: no runner runs
// or retires it.
func isIngress(catalog *sdk.Catalog, consumer string) bool {
	conn, ok := catalog.Lookup(consumer, sdk.KindConsumer)
	return ok && conn.Ingress
}
