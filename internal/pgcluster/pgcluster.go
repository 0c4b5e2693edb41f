// Package pgcluster runs a private PostgreSQL cluster as a child process,
// from the PostgreSQL server binaries installed on the machine. `vrsky dev`
// and the tests use it so that nobody has to set up a database server first.
//
// The cluster listens only on 127.0.0.1 and on a unix socket inside its own
// directory, trusts every local connection and has logical replication
// enabled. It is for development and tests: it must never be used as, or
// pointed at, a production database, and it never touches a cluster it did
// not create in its own directory.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// readyTimeout bounds how long Start waits for the server to accept
	// connections.
	readyTimeout = 30 * time.Second
	// staleStopTimeout bounds how long Start waits for a leftover server
	// from an earlier run to stop before killing it.
	staleStopTimeout = 10 * time.Second
	// maxSocketPath keeps the unix socket path below the kernel's limit of
	// 108 bytes (sun_path), leaving room for the terminating NUL.
	maxSocketPath = 100
	// systemUser is the account the server runs as when we are root.
	systemUser = "postgres"
	// superuser is the database superuser initdb creates.
	superuser = "postgres"
)

// Options configures Start. The zero value is not usable: Dir is required.
type Options struct {
	// Dir is the cluster's data directory. It is created if missing and
	// initialised with initdb if it holds no cluster yet.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Logger receives the cluster's own log lines; nil means slog.Default().
	// The server's log goes to a file inside Dir, never to the Logger.
	Logger *slog.Logger
}

// Cluster is a running private PostgreSQL server started by Start. Its
// methods are safe for concurrent use.
type Cluster struct {
	dir        string
	port       int
	socketDir  string
	ownsSocket bool // socketDir is a temporary directory we remove on Stop
	logPath    string
	log        *slog.Logger
	pid        int

	exited  chan struct{} // closed when the server process has exited
	waitErr error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
	stopping chan struct{} // closed when Stop begins
}

// FindBinDir returns the directory that holds the PostgreSQL server binaries
// (initdb and postgres). It looks, in order, at $VRSKY_PG_BIN, at PATH, and
// at /usr/lib/postgresql/<version>/bin, preferring the highest version.
func FindBinDir() (string, error) {
	if dir := os.Getenv("VRSKY_PG_BIN"); dir != "" {
		if err := hasServerBinaries(dir); err != nil {
			return "", fmt.Errorf("find PostgreSQL binaries: VRSKY_PG_BIN=%s: %w (point it at the directory holding initdb and postgres, or unset it after `apt-get install -y postgresql`)", dir, err)
		}
		return dir, nil
	}
	if path, err := exec.LookPath("postgres"); err == nil {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			path = resolved
		}
		if dir := filepath.Dir(path); hasServerBinaries(dir) == nil {
			return dir, nil
		}
	}
	candidates, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(candidates, func(i, j int) bool {
		return versionOf(candidates[i]) > versionOf(candidates[j])
	})
	for _, dir := range candidates {
		if hasServerBinaries(dir) == nil {
			return dir, nil
		}
	}
	return "", errors.New("find PostgreSQL binaries: initdb and postgres are neither in $VRSKY_PG_BIN, on PATH nor in /usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql` or set VRSKY_PG_BIN")
}

func hasServerBinaries(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("no %s: %w", name, err)
		}
		if info.IsDir() || info.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", filepath.Join(dir, name))
		}
	}
	return nil
}

// versionOf reads the major version out of /usr/lib/postgresql/<v>/bin.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

// runAs says which account the server runs under.
type runAs struct {
	cred *syscall.Credential // nil: as ourselves
	uid  int
	gid  int
}

func (r runAs) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: r.cred}
}

// chown gives path to the server's account when we run it as someone else.
func (r runAs) chown(path string) error {
	if r.cred == nil {
		return nil
	}
	return os.Chown(path, r.uid, r.gid)
}

// Start initialises Dir if needed, starts the server and waits until it
// accepts connections. A server left running on Dir by an earlier process
// that was killed is stopped first. The caller must call Stop; should our
// process die first, the kernel asks the server to shut down.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "postgres")
	if opts.Dir == "" {
		return nil, errors.New("start postgres: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", opts.Dir, err)
	}
	c, err := start(ctx, dir, opts.Port, logger)
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", dir, err)
	}
	logger.Info("postgres started", "dir", dir, "port", c.port, "pid", c.pid, "log", c.logPath)
	return c, nil
}

func start(ctx context.Context, dir string, port int, logger *slog.Logger) (*Cluster, error) {
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	as, err := prepareDir(dir, logger)
	if err != nil {
		return nil, err
	}
	// The server's processes report their working directory resolved.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	if err := stopStale(dir, logger); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, binDir, dir, as, logger); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("inspect data directory: %w", err)
	}

	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	if err := as.chown(logDir); err != nil {
		return nil, fmt.Errorf("chown log directory: %w", err)
	}

	socketDir, ownsSocket, err := chooseSocketDir(dir, as)
	if err != nil {
		return nil, err
	}
	// A free port picked here can be taken by someone else before the server
	// binds it; try a few ports before giving up.
	attempts := 1
	if port == 0 {
		attempts = 3
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				break
			}
		}
		var c *Cluster
		c, err = launch(ctx, binDir, dir, p, socketDir, as, logger)
		if err == nil {
			c.ownsSocket = ownsSocket
			return c, nil
		}
		var early *exitedEarlyError
		if attempt >= attempts || !errors.As(err, &early) || ctx.Err() != nil {
			break
		}
		logger.Warn("postgres exited while starting, retrying on another port", "port", p, "error", err)
	}
	if ownsSocket {
		_ = os.RemoveAll(socketDir)
	}
	return nil, err
}

// prepareDir creates dir and, when we are root, hands it to the postgres
// system account and makes sure that account can reach it.
func prepareDir(dir string, logger *slog.Logger) (runAs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return runAs{}, fmt.Errorf("create data directory: %w", err)
	}
	if os.Geteuid() != 0 {
		return runAs{}, nil
	}
	// PostgreSQL refuses to run as root.
	u, err := user.Lookup(systemUser)
	if err != nil {
		return runAs{}, fmt.Errorf("running as root, PostgreSQL must run as the %q system user, which was not found (install the postgresql package, or run as an ordinary user): %w", systemUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return runAs{}, fmt.Errorf("parse uid of user %q: %w", systemUser, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return runAs{}, fmt.Errorf("parse gid of user %q: %w", systemUser, err)
	}
	as := runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}
	if err := as.chown(dir); err != nil {
		return runAs{}, fmt.Errorf("chown data directory to %s: %w", systemUser, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return runAs{}, fmt.Errorf("chmod data directory: %w", err)
	}
	if err := makeAncestorsSearchable(dir, logger); err != nil {
		return runAs{}, err
	}
	return as, nil
}

// makeAncestorsSearchable adds the search (o+x) bit to every ancestor of dir
// that lacks it, so that the postgres account can reach dir.
func makeAncestorsSearchable(dir string, logger *slog.Logger) error {
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		info, err := os.Stat(parent)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", parent, err)
		}
		if mode := info.Mode().Perm(); mode&0o001 == 0 {
			if err := os.Chmod(parent, mode|0o001); err != nil {
				return fmt.Errorf("let %s reach %s: chmod o+x %s: %w", systemUser, dir, parent, err)
			}
			logger.Info("added the search permission so the postgres user can reach its data directory", "dir", parent, "mode", fmt.Sprintf("%#o", mode|0o001))
		}
		if parent == filepath.Dir(parent) {
			return nil
		}
	}
}

// chooseSocketDir returns dir itself, or a short temporary directory when
// the socket path inside dir would be too long for the kernel.
func chooseSocketDir(dir string, as runAs) (string, bool, error) {
	if len(filepath.Join(dir, ".s.PGSQL.65535")) < maxSocketPath {
		return dir, false, nil
	}
	tmp, err := os.MkdirTemp("", "vrsky-pgsock-")
	if err != nil {
		return "", false, fmt.Errorf("create socket directory: %w", err)
	}
	if err := as.chown(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", false, fmt.Errorf("chown socket directory: %w", err)
	}
	return tmp, true, nil
}

func initdb(ctx context.Context, binDir, dir string, as runAs, logger *slog.Logger) error {
	logger.Info("initialising a new cluster", "dir", dir)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", dir, "-A", "trust", "-U", superuser, "-E", "UTF8", "--no-locale")
	cmd.Dir = dir
	cmd.SysProcAttr = as.sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	logger.Debug("initdb done", "output", string(out))
	return nil
}

// exitedEarlyError reports a server that exited before accepting
// connections.
type exitedEarlyError struct {
	err     error
	logTail string
}

func (e *exitedEarlyError) Error() string {
	return fmt.Sprintf("server exited before accepting connections (%v); end of its log:\n%s", e.err, e.logTail)
}

func (e *exitedEarlyError) Unwrap() error { return e.err }

// launch starts the server process and waits until it accepts connections.
func launch(ctx context.Context, binDir, dir string, port int, socketDir string, as runAs, logger *slog.Logger) (*Cluster, error) {
	logPath := filepath.Join(dir, "log", "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close() // the child holds its own copy

	cmd := exec.Command(filepath.Join(binDir, "postgres"),
		"-D", dir,
		"-p", strconv.Itoa(port),
		"-k", socketDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "wal_level=logical",
		"-c", "max_replication_slots=16",
		"-c", "max_wal_senders=16",
		"-c", "logging_collector=off",
	)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so that a terminal's Ctrl-C reaches only us
	// and we shut the server down in order; what happens when our process
	// dies differs per system (proc_linux.go, proc_other.go).
	cmd.SysProcAttr = serverProcAttr(as.cred)

	c := &Cluster{
		dir:       dir,
		port:      port,
		socketDir: socketDir,
		logPath:   logPath,
		log:       logger,
		exited:    make(chan struct{}),
		stopping:  make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		// Linux's parent-death signal (proc_linux.go) fires when the
		// thread that forked the child exits, not the process. This
		// goroutine keeps its thread locked (and so alive) until the
		// server has exited; the thread then ends with the goroutine.
		// Elsewhere the lock costs one thread while the server runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	c.pid = cmd.Process.Pid
	go c.watch()

	if err := c.waitReady(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), staleStopTimeout)
		defer cancel()
		_ = c.Stop(stopCtx)
		return nil, err
	}
	return c, nil
}

// watch reports a server that exits without being asked to.
func (c *Cluster) watch() {
	select {
	case <-c.stopping:
	case <-c.exited:
		select {
		case <-c.stopping:
		default:
			c.log.Error("postgres exited unexpectedly", "pid", c.pid, "error", c.waitErr, "log", c.logPath, "log_tail", tail(c.logPath, 2048))
		}
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-c.exited:
			return &exitedEarlyError{err: c.waitErr, logTail: tail(c.logPath, 4096)}
		default:
		}
		if lastErr = c.ping(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-c.exited:
			return &exitedEarlyError{err: c.waitErr, logTail: tail(c.logPath, 4096)}
		case <-ctx.Done():
			return fmt.Errorf("server did not accept connections on port %d within %s (last error: %v); end of its log %s:\n%s",
				c.port, readyTimeout, lastErr, c.logPath, tail(c.logPath, 4096))
		case <-tick.C:
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Make sure we reached our server, not another one that holds the port.
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return err
	}
	if dataDir != c.dir {
		return fmt.Errorf("port %d is served by the cluster in %s", c.port, dataDir)
	}
	return nil
}

// tail returns at most the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	off := info.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(buf)
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// URL returns a connection URL for database as the postgres superuser.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, c.port, database)
}

var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates the database name unless it exists already. The
// name must match ^[a-z_][a-z0-9_]{0,62}$.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	if !databaseName.MatchString(name) {
		return fmt.Errorf("create database %q: invalid name: want lower-case letters, digits and underscores, not starting with a digit, at most 63", name)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %q: connect: %w", name, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("create database %q: look it up: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// waits for it to exit. If ctx ends first, the server and its children are
// killed. After Stop returns no process of the cluster remains. Stop is
// idempotent; later calls return the first call's result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.stopErr = c.stop(ctx)
		if c.ownsSocket {
			_ = os.RemoveAll(c.socketDir)
		}
	})
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	c.log.Info("stopping postgres", "pid", c.pid)
	if err := syscall.Kill(c.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop postgres (pid %d): %w", c.pid, err)
	}
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
	}
	c.log.Warn("postgres did not stop in time, killing it", "pid", c.pid)
	// The server's children put themselves in their own sessions, so a
	// process-group kill would miss them: find them by their data directory.
	children := clusterProcesses(c.dir)
	_ = syscall.Kill(c.pid, syscall.SIGKILL)
	<-c.exited
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killLeftovers(c.dir, 5*time.Second, c.log)
	return fmt.Errorf("stop postgres (pid %d): killed after %w", c.pid, ctx.Err())
}

// stopStale stops a server that an earlier process left running on dir, and
// removes a postmaster.pid whose process is gone.
func stopStale(dir string, logger *slog.Logger) error {
	pidFile := filepath.Join(dir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pidFile, err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 && isClusterProcess(pid, dir) {
		logger.Warn("stopping a postgres left running on this directory", "dir", dir, "pid", pid)
		// SIGTERM asks for a smart shutdown; its owner is gone, so no
		// session should hold it open for long.
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop leftover postgres (pid %d): %w", pid, err)
		}
		if !waitGone(pid, staleStopTimeout) {
			logger.Warn("leftover postgres did not stop in time, killing it", "pid", pid, "waited", staleStopTimeout)
			children := clusterProcesses(dir)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for _, child := range children {
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
			if !waitGone(pid, 5*time.Second) {
				return fmt.Errorf("stop leftover postgres (pid %d): still running after SIGKILL", pid)
			}
		}
	}
	// The children of a killed server exit on their own once they notice,
	// but while they live they hold the old shared memory and a new server
	// refuses to start.
	if left := killLeftovers(dir, staleStopTimeout, logger); len(left) > 0 {
		return fmt.Errorf("stop processes left by an earlier postgres on %s: %v still running", dir, left)
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", pidFile, err)
	}
	logger.Info("removed stale postmaster.pid", "file", pidFile)
	return nil
}

// killLeftovers waits up to timeout for the postgres processes working in
// dir to exit, then kills those that remain. It returns the processes still
// alive after that.
func killLeftovers(dir string, timeout time.Duration, logger *slog.Logger) []int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(clusterProcesses(dir)) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	left := clusterProcesses(dir)
	if len(left) > 0 {
		logger.Warn("killing postgres processes left over on this directory", "dir", dir, "pids", left)
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for range 100 {
		if left = clusterProcesses(dir); len(left) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return left
}

// waitGone polls until pid has exited or timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !processAlive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
