package dataplane

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// A connection whose store timed out moves once, not once per timeout,
// and a closed one is forgotten.
func TestLeaveStuckNodeReconnectsOncePerWindow(t *testing.T) {
	nc, err := nats.Connect(testenv.NATS(t), nats.ReconnectWait(10*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	for range 5 {
		leaveStuckNode(nc)
	}
	require.Eventually(t, func() bool { return nc.Status() == nats.CONNECTED && nc.Stats().Reconnects == 1 }, 5*time.Second, 10*time.Millisecond)
	leaveStuckNode(nc)
	time.Sleep(100 * time.Millisecond)
	require.EqualValues(t, 1, nc.Stats().Reconnects, "within the window it stays")

	nc.Close()
	leaveStuckNode(nc) // closed: nothing to move
	forgetClosed()
	_, ok := left.Load(nc)
	require.False(t, ok, "a closed connection is forgotten")
	leaveStuckNode(nil)
}
