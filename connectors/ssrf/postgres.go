package ssrf

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresConnectTimeout bounds a whole PostgreSQL connection attempt to one
// host: TCP connect, TLS and the startup handshake. A server that accepts
// the connection and never answers costs at most this long.
const PostgresConnectTimeout = 10 * time.Second

// GuardPostgres makes every connection cfg opens (the host, its fallbacks,
// every address they resolve to) go through the guard, and bounds each
// attempt by PostgresConnectTimeout, or by the connection string's own
// connect_timeout when that is shorter.
//
// Names are not resolved up front: the lookup hands each host to the dial
// function as it is, which resolves it and checks every address just
// before connecting to it, so an answer that changes between a lookup and
// the connect (DNS rebinding) is still checked. A host given as a Unix
// socket directory counts as loopback.
func (g *Guard) GuardPostgres(cfg *pgconn.Config) {
	cfg.LookupFunc = lookupLater
	cfg.DialFunc = g.DialContext
	if cfg.ConnectTimeout <= 0 || cfg.ConnectTimeout > PostgresConnectTimeout {
		cfg.ConnectTimeout = PostgresConnectTimeout
	}
}

// lookupLater leaves resolution to the guarded dial.
func lookupLater(_ context.Context, host string) ([]string, error) {
	return []string{host}, nil
}
