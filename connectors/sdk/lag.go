package sdk

import "context"

// LagReporter is implemented by a Consumer that can tell how far its
// confirmed position is behind its source, in bytes: the PostgreSQL CDC
// consumer reports the WAL its replication slot holds that it has not
// confirmed yet. The runner calls Lag every few seconds while the consumer
// runs (on the runner that holds the integration's lease) and exposes the
// answer as vrsky_cdc_slot_lag_bytes{tenant,integration}; an error leaves
// the last value.
//
// Lag may be called concurrently with Run, must honour ctx and must not
// block longer than a query to the source; it never changes the source's
// state.
type LagReporter interface {
	Lag(ctx context.Context) (int64, error)
}
