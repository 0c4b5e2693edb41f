// Package temporaldev runs an embedded, single-process Temporal server for
// `vrsky dev`: SQLite persistence in one file (so workflow histories and
// namespaces survive a restart), the VRSky namespace registered, frontend gRPC
// on a chosen address and, optionally, the Temporal Web UI.
//
// It is for development and demos only. It must never be used in production,
// never listen beyond the frontend and UI addresses it is given (every
// internal service binds to 127.0.0.1), and never pass Temporal's INFO chatter
// on to the process log.
package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	// DefaultFrontendAddr is where the frontend listens when Options.FrontendAddr
	// is empty: Temporal's usual port, so the `temporal` CLI finds it unaided.
	DefaultFrontendAddr = "127.0.0.1:7233"
	// DefaultNamespace is the namespace registered when Options.Namespace is empty.
	DefaultNamespace = "default"

	loopback    = "127.0.0.1"
	clusterName = "active"
	// readyTimeout bounds how long Start waits for the frontend and the UI to
	// answer when ctx carries no earlier deadline.
	readyTimeout = 60 * time.Second
)

// Options configures Start. The zero value is usable except for DBFile.
type Options struct {
	// DBFile is the SQLite file holding all Temporal state. It is created,
	// with its directory and the schema, on first start. Required.
	DBFile string
	// FrontendAddr is the host:port of the frontend gRPC service. Port 0 picks
	// a free port; "" means DefaultFrontendAddr. The host must be an IP
	// address or "localhost".
	FrontendAddr string
	// UIAddr is the host:port of the Temporal Web UI. "" runs no UI; port 0
	// picks a free port.
	UIAddr string
	// Namespace is registered (idempotently) before the server starts.
	// "" means DefaultNamespace.
	Namespace string
	// Logger receives Temporal's warnings and errors, with
	// component="temporal". nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running embedded Temporal server. Its methods are safe for
// concurrent use.
type Server struct {
	frontendAddr string
	uiURL        string
	namespace    string
	logLevel     *slog.LevelVar

	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Start creates the SQLite schema if DBFile is new, registers the namespace,
// starts every Temporal service in this process and, when UIAddr is set, the
// Web UI. It returns once the frontend serves the namespace and the UI
// answers, or with an error when ctx ends first (at most one minute when ctx
// has no deadline). The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "temporal")
	namespace := opts.Namespace
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if opts.DBFile == "" {
		return nil, errors.New("start Temporal: no database file given")
	}

	frontendHost, frontendPort, err := splitAddr(opts.FrontendAddr, DefaultFrontendAddr)
	if err != nil {
		return nil, fmt.Errorf("start Temporal: frontend address: %w", err)
	}
	ports, err := pickPorts(frontendHost, frontendPort)
	if err != nil {
		return nil, fmt.Errorf("start Temporal: pick free ports: %w", err)
	}
	// Where this process, the SDK clients and the UI dial the frontend.
	dialHost := frontendHost
	if ip := net.ParseIP(frontendHost); ip != nil && ip.IsUnspecified() {
		dialHost = loopback
	}
	frontendAddr := net.JoinHostPort(dialHost, strconv.Itoa(ports.frontendGRPC))

	sqlConfig, err := openDatabase(opts.DBFile, namespace)
	if err != nil {
		return nil, err
	}

	conf := serverConfig(frontendHost, dialHost, ports, sqlConfig)
	level := new(slog.LevelVar)
	level.Set(minLevel)
	srv, err := newTemporalServer(conf, ports, serverLogger{log: logger, level: level})
	if err != nil {
		return nil, err
	}

	startedAt := time.Now()
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	s := &Server{
		frontendAddr: frontendAddr,
		namespace:    namespace,
		logLevel:     level,
		temporal:     srv,
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitForFrontend(readyCtx, frontendAddr, namespace, logger); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if opts.UIAddr != "" {
		if err := s.startUI(readyCtx, opts.UIAddr); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	logger.Debug("Temporal ready", "frontend", s.frontendAddr, "ui", s.uiURL,
		"namespace", namespace, "took", time.Since(startedAt))
	return s, nil
}

// FrontendAddr returns the host:port clients dial to reach the frontend.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL returns the Web UI's base URL ("http://host:port"), or "" when the
// server runs without UI.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace returns the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI, then the Temporal services. It is idempotent; later
// calls return the first call's result. Temporal's own logs are silenced
// from here on; a failure to stop is returned instead.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.logLevel != nil {
			s.logLevel.Set(quietLevel)
		}
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("stop Temporal server: %w", err)
		}
	})
	return s.stopErr
}

// servicePorts are the ports of every listener the Temporal services open.
type servicePorts struct {
	frontendGRPC, frontendHTTP, history, matching, worker int
}

// openDatabase creates dbFile's directory and schema when the file is new or
// empty, registers namespace when it is missing, and returns the SQL store
// configuration for the server.
func openDatabase(dbFile, namespace string) (*config.SQL, error) {
	if err := os.MkdirAll(filepath.Dir(dbFile), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for Temporal database %q: %w", dbFile, err)
	}
	sqlConfig := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbFile,
		// A write-ahead log: a commit appends to one file and syncs it
		// once (synchronous stays FULL), where the default rollback
		// journal creates, syncs and deletes a journal file besides the
		// database's own sync (docs/adr/0028).
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal"},
	}

	info, err := os.Stat(dbFile)
	switch {
	case err == nil && info.IsDir():
		return nil, fmt.Errorf("open Temporal database %q: is a directory", dbFile)
	case errors.Is(err, os.ErrNotExist) || err == nil && info.Size() == 0:
		if err := sqliteschema.SetupSchema(sqlConfig); err != nil {
			// Leave no half-built file behind: the next start would take it
			// for a complete database.
			_ = os.Remove(dbFile)
			return nil, fmt.Errorf("create Temporal schema in %q: %w", dbFile, err)
		}
	case err != nil:
		return nil, fmt.Errorf("open Temporal database %q: %w", dbFile, err)
	}

	nsConfig, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("register namespace %q: %w", namespace, err)
	}
	// CreateNamespaces leaves an existing namespace untouched.
	if err := sqliteschema.CreateNamespaces(sqlConfig, nsConfig); err != nil {
		return nil, fmt.Errorf("register namespace %q in %q: %w", namespace, dbFile, err)
	}
	return sqlConfig, nil
}

// serverConfig is the static configuration of a single-host cluster with all
// four services in this process and one history shard.
func serverConfig(frontendHost, dialHost string, ports servicePorts, sqlConfig *config.SQL) *config.Config {
	frontendAddr := net.JoinHostPort(dialHost, strconv.Itoa(ports.frontendGRPC))
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = loopback

	const store = "sqlite-default"
	conf.Persistence.DefaultStore = store
	conf.Persistence.VisibilityStore = store
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{store: {SQL: sqlConfig}}

	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendAddr,
				HTTPAddress:            net.JoinHostPort(dialHost, strconv.Itoa(ports.frontendHTTP)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"

	internal := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: loopback}}
	}
	frontend := config.Service{RPC: config.RPC{
		GRPCPort: ports.frontendGRPC,
		HTTPPort: ports.frontendHTTP,
		BindOnIP: frontendHost,
	}}
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): frontend,
		string(primitives.HistoryService):  internal(ports.history),
		string(primitives.MatchingService): internal(ports.matching),
		string(primitives.WorkerService):   internal(ports.worker),
	}

	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The server's own system workers dial the frontend here.
	conf.PublicClient.HostPort = frontendAddr
	return &conf
}

// The embedded server's footprint while nothing happens (docs/adr/0028).
const (
	// historyCacheSize bounds the workflows whose state the history
	// service keeps in memory, about 40 KiB each: every deployed
	// integration has a lifecycle workflow that sleeps until its spec
	// changes, and one that wakes is read back from SQLite in a moment.
	historyCacheSize = 512
	// namespaceRefresh is how often every service reads the namespaces
	// again (Temporal's default is 2 s, for multi-cluster failover). A
	// namespace it does not know yet is read at once when asked for.
	namespaceRefresh = 10 * time.Second
)

// newTemporalServer builds the server with static membership: every service
// is in this process, so no gossip ring (and no membership port) is needed.
func newTemporalServer(conf *config.Config, ports servicePorts, logger serverLogger) (temporal.Server, error) {
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("build Temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("build Temporal claim mapper: %w", err)
	}
	host := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(port)))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: host(ports.frontendGRPC),
			primitives.HistoryService:  host(ports.history),
			primitives.MatchingService: host(ports.matching),
			primitives.WorkerService:   host(ports.worker),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 historyCacheSize,
			dynamicconfig.NamespaceCacheRefreshInterval.Key():                namespaceRefresh,
			dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("build Temporal server: %w", err)
	}
	return srv, nil
}

// waitForFrontend polls until the frontend passes its health check and
// serves namespace, or ctx ends.
func waitForFrontend(ctx context.Context, addr, namespace string, logger *slog.Logger) error {
	quiet := slog.New(minLevelHandler{Handler: logger.Handler(), min: minLevel})
	var lastErr error
	for {
		if lastErr = probeFrontend(ctx, addr, namespace, quiet); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for Temporal frontend on %s: %w (last error: %v)", addr, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func probeFrontend(ctx context.Context, addr, namespace string, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  addr,
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(logger),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	return err
}

// startUI starts the Web UI on addr and waits until it answers.
func (s *Server) startUI(ctx context.Context, addr string) error {
	host, port, err := splitAddr(addr, "")
	if err != nil {
		return fmt.Errorf("start Temporal UI: address: %w", err)
	}
	// The UI server exits the process when it cannot listen, so make sure
	// it can before starting it.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("start Temporal UI on %s: %w", addr, err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	ui := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	s.ui = ui
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = ui.Start()
	}()

	dialHost := host
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		dialHost = loopback
	}
	s.uiURL = "http://" + net.JoinHostPort(dialHost, strconv.Itoa(port))
	if err := waitForHTTP(ctx, s.uiURL+"/healthz"); err != nil {
		return fmt.Errorf("wait for Temporal UI on %s: %w", s.uiURL, err)
	}
	return nil
}

func waitForHTTP(ctx context.Context, url string) error {
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// splitAddr parses host:port, using def when addr is empty, an empty host
// meaning 127.0.0.1 and "localhost" mapped to 127.0.0.1 (Temporal binds to
// IP addresses only).
func splitAddr(addr, def string) (string, int, error) {
	if addr == "" {
		addr = def
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", addr)
	}
	switch {
	case host == "" || host == "localhost":
		host = loopback
	case net.ParseIP(host) == nil:
		return "", 0, fmt.Errorf("host in %q is not an IP address", addr)
	}
	return host, port, nil
}

// Ports are picked below Linux's ephemeral range (32768 and up by default):
// a port picked there and released until the server binds it could be taken
// meanwhile by any outgoing connection, which fails the start.
const (
	pickFrom  = 20000
	pickTo    = 32768
	pickTries = 64
)

// listenBelowEphemeral listens on a free port of host picked at random
// below the ephemeral range, or on any free port when none is found.
func listenBelowEphemeral(host string) (net.Listener, error) {
	for range pickTries {
		port := pickFrom + rand.IntN(pickTo-pickFrom)
		if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// pickPorts chooses the frontend's gRPC port (unless given) and HTTP port on
// frontendHost and the internal services' gRPC ports on 127.0.0.1. Every
// listener stays open until all ports are chosen, so the ports are distinct.
func pickPorts(frontendHost string, frontendGRPC int) (servicePorts, error) {
	var open []net.Listener
	defer func() {
		for _, ln := range open {
			_ = ln.Close()
		}
	}()
	pick := func(host string) (int, error) {
		ln, err := listenBelowEphemeral(host)
		if err != nil {
			return 0, err
		}
		open = append(open, ln)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}

	var ports servicePorts
	var err error
	ports.frontendGRPC = frontendGRPC
	if frontendGRPC == 0 {
		if ports.frontendGRPC, err = pick(frontendHost); err != nil {
			return servicePorts{}, err
		}
	}
	for _, p := range []struct {
		host string
		port *int
	}{
		{frontendHost, &ports.frontendHTTP},
		{loopback, &ports.history},
		{loopback, &ports.matching},
		{loopback, &ports.worker},
	} {
		if *p.port, err = pick(p.host); err != nil {
			return servicePorts{}, err
		}
	}
	return ports, nil
}
