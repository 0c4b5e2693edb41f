// Package natsserver runs an embedded NATS server with JetStream for
// `vrsky dev` and for tests.
//
// It only starts and stops the server; streams, consumers and KV buckets are
// created by the hot path. It must never be used in production roles, which
// connect to a real NATS cluster.
package natsserver

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/natsauth"
)

// Options configure an embedded server. The zero value plus a StoreDir is a
// server on a free loopback port.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free port.
	Addr string
	// StoreDir holds JetStream's file storage; it survives restarts.
	StoreDir string
	// MaxStore caps JetStream file storage in bytes (0 = server default).
	MaxStore int64
	// Logger receives the server's warnings and errors.
	Logger *slog.Logger
	// Accounts, when set, runs the server in operator mode: it trusts the
	// keys' operator, holds the system and platform accounts, and takes
	// tenant accounts pushed at run time (kept in StoreDir/accounts). Nil
	// means one account without authentication.
	Accounts *natsauth.Keys
	// MonitorAddr, when set, serves the server's HTTP monitoring endpoints
	// (/varz, /jsz…) on host:port; port 0 picks a free port. Empty: none.
	MonitorAddr string
	// Name is the server's name ("vrsky-dev" when empty); a cluster's
	// nodes need names of their own, stable across restarts.
	Name string
	// Cluster, when set, makes the server a node of a cluster.
	Cluster *ClusterNode
}

// ClusterNode is a server's part in a cluster: the cluster's name, where
// its routes listen and the route URLs of the nodes (its own may be among
// them).
type ClusterNode struct {
	Name   string
	Addr   string // host:port; the port must be known to the peers
	Routes []string
}

// Server is a running embedded NATS server.
type Server struct {
	ns  *server.Server
	log *slog.Logger
}

// Start starts the server and waits until it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	host, port, err := splitAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("start nats: StoreDir is required")
	}
	if err := os.MkdirAll(opts.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("start nats: create store dir: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	nopts := &server.Options{
		ServerName:            cmp.Or(opts.Name, "vrsky-dev"),
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              opts.StoreDir,
		JetStreamMaxStore:     opts.MaxStore,
		NoSigs:                true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
	}
	if opts.MonitorAddr != "" {
		mhost, mport, err := splitAddr(opts.MonitorAddr)
		if err != nil {
			return nil, fmt.Errorf("start nats: monitoring %w", err)
		}
		if mport == 0 {
			mport = server.RANDOM_PORT
		}
		nopts.HTTPHost, nopts.HTTPPort = mhost, mport
	}
	if opts.Cluster != nil {
		if err := joinCluster(nopts, *opts.Cluster); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
	}
	if opts.Accounts != nil {
		if err := trustOperator(nopts, opts.Accounts, filepath.Join(opts.StoreDir, "accounts")); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
	}
	ns, err := server.NewServer(nopts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	log := logging.Component(opts.Logger, "nats")
	ns.SetLoggerV2(&serverLogger{log: log}, false, false, false)
	go ns.Start()

	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !ns.ReadyForConnections(deadline) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats on %s: not ready within %s", opts.Addr, deadline)
	}
	return &Server{ns: ns, log: log}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// MonitorURL is the http:// URL of the monitoring endpoints, or "" when
// Options.MonitorAddr was empty.
func (s *Server) MonitorURL() string {
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Healthy reports whether the server and JetStream are up.
func (s *Server) Healthy() error {
	if !s.ns.Running() {
		return fmt.Errorf("nats server not running")
	}
	if !s.ns.JetStreamEnabled() {
		return fmt.Errorf("jetstream not enabled")
	}
	return nil
}

// Shutdown stops the server and waits for it to finish; it is idempotent.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// trustOperator configures nopts for operator mode with a directory
// resolver in dir, preloaded with the system and platform accounts. The
// resolver takes account updates and deletions signed by the operator.
func trustOperator(nopts *server.Options, keys *natsauth.Keys, dir string) error {
	operator, err := keys.OperatorClaims()
	if err != nil {
		return err
	}
	resolver, err := server.NewDirAccResolver(dir, 0, time.Minute, server.HardDelete)
	if err != nil {
		return fmt.Errorf("account resolver: %w", err)
	}
	for _, account := range []func() (string, error){keys.SystemAccountJWT, keys.PlatformAccountJWT} {
		token, err := account()
		if err != nil {
			return err
		}
		claims, err := jwt.DecodeAccountClaims(token)
		if err != nil {
			return err
		}
		if err := resolver.Store(claims.Subject, token); err != nil {
			return fmt.Errorf("store account %s: %w", claims.Name, err)
		}
	}
	nopts.TrustedOperators = []*jwt.OperatorClaims{operator}
	nopts.SystemAccount = operator.SystemAccount
	nopts.AccountResolver = resolver
	return nil
}

// joinCluster configures nopts as a node of c.
func joinCluster(nopts *server.Options, c ClusterNode) error {
	host, port, err := splitAddr(c.Addr)
	if err != nil {
		return fmt.Errorf("cluster %w", err)
	}
	if port == 0 {
		return fmt.Errorf("cluster address %q: the peers need a fixed port", c.Addr)
	}
	nopts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats" || u.Host == "" {
			return fmt.Errorf("cluster route %q: want nats://host:port", r)
		}
		nopts.Routes = append(nopts.Routes, u)
	}
	return nil
}

func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		return "127.0.0.1", 0, nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("nats address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("nats address %q: invalid port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// serverLogger adapts nats-server's logger to slog: warnings and errors keep
// their level, notices become debug lines, and debug/trace output is dropped so
// the server's chatter does not drown VRSky's own logs.
type serverLogger struct{ log *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  {}
func (l *serverLogger) Tracef(format string, v ...any)  {}
