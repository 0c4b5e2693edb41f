package dataplane

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// In one shared account (no account per tenant) each tenant's DLQ still
// holds at most its own Size: a flood of dead letters of one tenant drops
// its own oldest ones and leaves the other tenant's DLQ and work alone.
// TenantStored counts only the tenant's streams.
func TestSharedAccountBoundsEachTenantsDLQ(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	accounts := SharedAccount{JS: js}
	flooder, innocent := Pipeline{Tenant: "flooder", Integration: "orders"}, Pipeline{Tenant: "innocent", Integration: "orders"}
	for _, p := range []Pipeline{flooder, innocent} {
		tjs, err := accounts.JetStream(ctx, p.Tenant)
		require.NoError(t, err)
		require.NoError(t, EnsureDLQStream(ctx, tjs, p.Tenant, 64<<10))
		_, err = EnsureStreams(ctx, tjs, p)
		require.NoError(t, err)
	}
	dlq, err := js.Stream(ctx, DLQStream("flooder"))
	require.NoError(t, err)
	require.Equal(t, int64(64<<10), dlq.CachedInfo().Config.MaxBytes, "a pipeline keeps the tenant's DLQ size")
	require.Equal(t, jetstream.DiscardOld, dlq.CachedInfo().Config.Discard)

	_, err = js.Publish(ctx, innocent.DLQSubject(), []byte("innocent's dead letter"))
	require.NoError(t, err)
	body := make([]byte, 4<<10)
	for range 64 {
		_, err := js.Publish(ctx, flooder.DLQSubject(), body)
		require.NoError(t, err, "dead letters are never refused: the oldest go")
	}
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, info.State.Bytes, uint64(64<<10))
	_, err = js.Publish(ctx, innocent.InSubject(), []byte("work"))
	require.NoError(t, err, "the other tenant still writes")

	flooded, err := TenantStored(ctx, js, "flooder")
	require.NoError(t, err)
	require.Equal(t, TenantStore{Bytes: int64(info.State.Bytes)}, flooded) //nolint:gosec // test sizes
	other, err := TenantStored(ctx, js, "innocent")
	require.NoError(t, err)
	require.Positive(t, other.Bytes)
	require.Less(t, other.Bytes, int64(1<<10), "only its own streams count")
	require.EqualValues(t, 1, other.Subjects, "its pipeline's subject holding work; not its DLQ's")
	_, err = TenantStored(ctx, js, "Not Valid")
	require.Error(t, err)
	require.Error(t, EnsureDLQStream(ctx, js, "Not Valid", 0))
}
