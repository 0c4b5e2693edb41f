package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natsserver"
)

// NATS starts a private NATS server with JetStream for this test and returns
// its client URL. The server and its storage are removed when the test ends.
func NATS(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// JetStream starts a private NATS server and returns a connected JetStream
// client; the connection is closed when the test ends.
func JetStream(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(NATS(t))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// NATSWithAccounts starts a private NATS server in operator mode — a NATS
// account per tenant, pushed at run time — and returns its client URL and
// the keys it trusts.
func NATSWithAccounts(t testing.TB) (string, *natsauth.Keys) {
	t.Helper()
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatalf("nats keys: %v", err)
	}
	return NATSTrusting(t, keys), keys
}

// NATSTrusting starts a private NATS server in operator mode trusting keys
// and returns its client URL.
func NATSTrusting(t testing.TB, keys *natsauth.Keys) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Accounts: keys})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// Connect connects to url with creds and closes the connection when the
// test ends.
func Connect(t testing.TB, url string, creds natsauth.Creds) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, creds.Option())
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// DedicatedNATS starts a private JetStream server that takes only user
// and password, as a tenant's dedicated instance does, and returns how the
// platform reaches it. The server is shut down when the test ends (or
// earlier, through the returned stop).
func DedicatedNATS(t testing.TB, user, password string) (url string, stop func()) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: user, Password: password, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("start dedicated nats: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("dedicated nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL(), srv.Shutdown
}
