// Package hotpath is VRSky's data plane: it runs integrations on NATS
// JetStream — streams, consumers, ack discipline, retries, the DLQ, the
// claim-check, and the reconciliation of desired state written by the
// control plane.
//
// It never imports Temporal: the data plane keeps running when the control
// plane is down, and no message body ever leaves NATS and the blob store.
package hotpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/logging"
)

// DesiredStateBucket is the KV bucket in which the control plane writes each
// integration's spec and desired status, and runners watch.
const DesiredStateBucket = "vrsky_desired_state"

// Runner reconciles the integrations in the desired-state bucket with the
// pipelines running in this process.
type Runner struct {
	JS     jetstream.JetStream
	Logger *slog.Logger
}

// Run creates the desired-state bucket when missing and watches it until ctx
// ends.
func (r *Runner) Run(ctx context.Context) error {
	log := logging.Component(r.Logger, "runner")
	kv, err := r.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DesiredStateBucket, History: 5})
	if err != nil {
		return fmt.Errorf("open desired-state bucket: %w", err)
	}
	watcher, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch desired state: %w", err)
	}
	defer func() { _ = watcher.Stop() }()
	log.Info("runner watching desired state", "bucket", DesiredStateBucket)
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-watcher.Updates():
			if !ok {
				return errors.New("desired-state watch closed")
			}
			if entry != nil {
				log.Debug("desired state changed", "key", entry.Key(), "revision", entry.Revision())
			}
		}
	}
}
