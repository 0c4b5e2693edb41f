package testenv

import (
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

// TemporalServer starts a real Temporal server in this process, with
// in-memory SQLite persistence and a freshly registered namespace, and stops
// it (with every client and worker it made) when the test ends.
//
// Use it when a test needs workers (ts.NewWorker) or more than one client;
// otherwise Temporal is shorter.
func TemporalServer(t testing.TB) *temporaltest.TestServer {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		// WithT sends client and worker logs to the test log and registers
		// Stop with t.Cleanup.
		return temporaltest.NewServer(temporaltest.WithT(tt))
	}
	ts := temporaltest.NewServer()
	t.Cleanup(ts.Stop)
	return ts
}

// Temporal starts a server as TemporalServer does and returns a client for
// its namespace. The client is closed, and the server stopped, when the test
// ends.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	return TemporalServer(t).GetDefaultClient()
}
