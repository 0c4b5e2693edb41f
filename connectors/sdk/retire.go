package sdk

import "context"

// Retirer is a Consumer that holds something at its source for as long as
// its integration exists — a replication slot that keeps the source's
// write-ahead log, a publication — and can let it go. The hot path calls
// Retire once the integration is deleted (never when it is only stopped),
// possibly from several runners at once and while another runner's copy of
// the consumer is still stopping: Retire must be idempotent and wait, until
// ctx ends, for a holder to let go.
type Retirer interface {
	Retire(ctx context.Context) error
}
