// Package local gives tenants dedicated NATS instances on this machine: a
// Provisioner starts one nats-server process per tenant, keeps its
// credentials, ports and JetStream store in the tenant's directory across
// restarts, checks its health, and stops and deletes it. `vrsky dev` and
// the tests use it; in production a tenant's instance runs in Kubernetes
// (internal/provision/kubernetes).
//
// It only runs processes: it never links a NATS server into its caller
// (the process is `vrsky nats-server`, a command of the development
// build), and it never builds a path from a tenant name spec.ValidName
// refuses.
package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/provision"
	"github.com/vrsky/vrsky/internal/spec"
)

// Defaults of a Provisioner's zero fields.
const (
	DefaultHost        = "127.0.0.1"
	DefaultMaxStorage  = 1 << 30  // 1 GiB of JetStream file storage
	DefaultMaxMemory   = 64 << 20 // 64 MiB of JetStream memory storage
	DefaultStopTimeout = 10 * time.Second
	// DefaultUnhealthyGrace is how long Ensure waits for a running but
	// unhealthy instance to recover before it restarts it.
	DefaultUnhealthyGrace = 10 * time.Second
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("the local provisioner is closed")

var _ provision.Provisioner = (*Provisioner)(nil)

// Provisioner runs tenants' dedicated NATS instances as child processes.
// Set Dir; the other fields have defaults. Calls for different tenants run
// at the same time, calls for one tenant one after the other. Only one
// Provisioner may use a Dir at a time. Close stops every instance it
// started.
type Provisioner struct {
	// Dir holds one directory per tenant, Dir/<tenant>/: the server's
	// configuration (nats.conf), its JetStream store (jetstream/), its logs
	// (nats.log, process.log), its pid (nats.pid) and instance.json, which
	// keeps the password and ports across restarts. Required; it must be a
	// path of letters, digits, '/', '.', '_', '-' and spaces.
	Dir string
	// Command builds the process that runs a NATS server from a
	// configuration file. Nil runs this executable as
	// `vrsky nats-server -c FILE`. When the returned command's Stdout or
	// Stderr is nil it goes to the tenant's process.log; when its
	// SysProcAttr is nil the process gets its own process group and, on
	// Linux, SIGTERM when its parent dies.
	Command func(configFile string) *exec.Cmd
	// Host is the address instances listen on and their URLs name
	// (DefaultHost when empty).
	Host string
	// MaxStorage and MaxMemory are every instance's JetStream limits in
	// bytes, of file and of memory storage (DefaultMaxStorage and
	// DefaultMaxMemory when zero).
	MaxStorage, MaxMemory int64
	// StopTimeout is how long an instance gets to stop after SIGTERM
	// before it is killed (DefaultStopTimeout when zero).
	StopTimeout time.Duration
	// UnhealthyGrace is how long Ensure waits for a running instance that
	// fails its health check before restarting it (DefaultUnhealthyGrace
	// when zero).
	UnhealthyGrace time.Duration
	// Logger receives instances' starts, exits and stops (discarded when
	// nil).
	Logger *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenant
	closed  bool
}

// tenant is what the Provisioner holds for one tenant.
type tenant struct {
	// lock serializes the calls for the tenant; a call holds it by
	// sending, so that waiting for it can end with the call's context.
	lock chan struct{}
	// proc is the running (or exited) instance; guarded by Provisioner.mu.
	proc *process
}

// process is a started instance, reaped by a goroutine so that an exit,
// a kill -9 included, is seen at once.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // what Wait returned; read after exited is closed
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// settings are a Provisioner's fields with the defaults applied, checked.
type settings struct {
	dir                   string
	host                  string
	maxStorage, maxMemory int64
	stopTimeout, grace    time.Duration
	log                   *slog.Logger
	command               func(string) (*exec.Cmd, error)
}

func (p *Provisioner) settings() (settings, error) {
	if p.Dir == "" {
		return settings{}, errors.New("local provisioner: Dir is required")
	}
	dir, err := filepath.Abs(p.Dir)
	if err != nil {
		return settings{}, fmt.Errorf("local provisioner: Dir %q: %w", p.Dir, err)
	}
	if !safePath.MatchString(dir) {
		return settings{}, fmt.Errorf("local provisioner: Dir %q: want a path of letters, digits, '/', '.', '_', '-' and spaces", dir)
	}
	s := settings{
		dir:         dir,
		host:        cmp.Or(p.Host, DefaultHost),
		maxStorage:  cmp.Or(p.MaxStorage, DefaultMaxStorage),
		maxMemory:   cmp.Or(p.MaxMemory, DefaultMaxMemory),
		stopTimeout: cmp.Or(p.StopTimeout, DefaultStopTimeout),
		grace:       cmp.Or(p.UnhealthyGrace, DefaultUnhealthyGrace),
		log:         cmp.Or(p.Logger, slog.New(slog.DiscardHandler)),
	}
	if !validHost(s.host) {
		return settings{}, fmt.Errorf("local provisioner: Host %q: want an IP address or a host name", s.host)
	}
	if s.maxStorage < 0 || s.maxMemory < 0 || s.stopTimeout < 0 || s.grace < 0 {
		return settings{}, errors.New("local provisioner: negative limit or timeout")
	}
	if p.Command != nil {
		s.command = func(conf string) (*exec.Cmd, error) { return p.Command(conf), nil }
	} else {
		s.command = vrskyNATSServer
	}
	return s, nil
}

// vrskyNATSServer is the default Command: this executable's hidden
// `nats-server` command.
func vrskyNATSServer(conf string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the vrsky executable to run nats-server: %w", err)
	}
	return exec.Command(exe, "nats-server", "-c", conf), nil
}

// tenantDir is the tenant's directory, for a valid name only.
func (s settings) tenantDir(name string) (string, error) {
	if !spec.ValidName(name) {
		shown := name
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return "", fmt.Errorf("invalid tenant name %q: want 1 to 63 lowercase letters, digits and '-', not starting with '-'", shown)
	}
	return filepath.Join(s.dir, name), nil
}

// instance is how the platform reaches an instance with state st.
func (s settings) instance(st state) dataplane.Instance {
	return dataplane.Instance{
		URLs:     []string{"nats://" + net.JoinHostPort(s.host, strconv.Itoa(st.Port))},
		User:     st.User,
		Password: st.Password,
		Monitor:  "http://" + net.JoinHostPort(s.host, strconv.Itoa(st.MonitorPort)),
	}
}

// acquire takes the tenant's lock, or fails when ctx ends first or the
// Provisioner is closed.
func (p *Provisioner) acquire(ctx context.Context, name string) (*tenant, func(), error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if p.tenants == nil {
		p.tenants = make(map[string]*tenant)
	}
	t := p.tenants[name]
	if t == nil {
		t = &tenant{lock: make(chan struct{}, 1)}
		p.tenants[name] = t
	}
	p.mu.Unlock()
	select {
	case t.lock <- struct{}{}:
		return t, func() { <-t.lock }, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("wait for another call on tenant %s: %w", name, ctx.Err())
	}
}

// current is the tenant's process, nil when none was started.
func (p *Provisioner) current(t *tenant) *process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return t.proc
}

// Ensure makes the tenant's instance run and returns how to reach it. A
// running instance that answers its health check is returned as it is;
// one that stopped, or has failed its health check for UnhealthyGrace, is
// started again with the same password and store, and the same ports
// while they are free. It returns once the instance's
// /healthz?js-enabled-only=true answers 200, or when ctx ends (the
// instance may then still be starting; the next call finds it).
func (p *Provisioner) Ensure(ctx context.Context, name string) (dataplane.Instance, error) {
	s, err := p.settings()
	if err != nil {
		return dataplane.Instance{}, err
	}
	dir, err := s.tenantDir(name)
	if err != nil {
		return dataplane.Instance{}, err
	}
	t, release, err := p.acquire(ctx, name)
	if err != nil {
		return dataplane.Instance{}, err
	}
	defer release()

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dataplane.Instance{}, fmt.Errorf("create the instance directory of tenant %s: %w", name, err)
	}
	st, ok, err := readState(dir)
	if err != nil {
		return dataplane.Instance{}, fmt.Errorf("read the instance of tenant %s: %w", name, err)
	}
	if !ok {
		if st, err = newState(); err != nil {
			return dataplane.Instance{}, err
		}
	}
	log := s.log.With("tenant", name)

	if proc := p.current(t); proc != nil && proc.running() {
		graceCtx, cancel := context.WithTimeout(ctx, s.grace)
		err := waitHealthy(graceCtx, s, st, proc, dir)
		cancel()
		if err == nil {
			return s.instance(st), nil
		}
		if ctx.Err() != nil {
			return dataplane.Instance{}, fmt.Errorf("ensure the instance of tenant %s: %w", name, ctx.Err())
		}
		log.Warn("dedicated nats instance unhealthy; restarting it", "error", err)
		p.stop(ctx, s, proc, log)
	}

	// A start fails when a port chosen free was taken before the server
	// bound it, among other reasons: try again on new ports.
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			st.Port, st.MonitorPort = 0, 0
		}
		proc, err := p.start(s, t, name, dir, &st, log)
		if err != nil {
			return dataplane.Instance{}, err
		}
		err = waitHealthy(ctx, s, st, proc, dir)
		if err == nil {
			log.Info("dedicated nats instance ready", "url", s.instance(st).URLs[0])
			return s.instance(st), nil
		}
		if ctx.Err() != nil {
			return dataplane.Instance{}, fmt.Errorf("ensure the instance of tenant %s: %w", name, err)
		}
		lastErr = err
	}
	return dataplane.Instance{}, fmt.Errorf("start the instance of tenant %s: %w", name, lastErr)
}

// Check reports whether the tenant's instance runs and serves JetStream:
// nil when its health check answers 200, provision.ErrNotFound when the
// tenant has no instance, and otherwise an error saying it is not
// running or is unhealthy.
func (p *Provisioner) Check(ctx context.Context, name string) error {
	s, err := p.settings()
	if err != nil {
		return err
	}
	dir, err := s.tenantDir(name)
	if err != nil {
		return err
	}
	t, release, err := p.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer release()

	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check the instance of tenant %s: %w", name, provision.ErrNotFound)
	}
	st, ok, err := readState(dir)
	if err != nil {
		return fmt.Errorf("check the instance of tenant %s: %w", name, err)
	}
	proc := p.current(t)
	switch {
	case !ok:
		return fmt.Errorf("the instance of tenant %s is not running: it was never started", name)
	case proc == nil:
		return fmt.Errorf("the instance of tenant %s is not running: not started since this process began", name)
	case !proc.running():
		return fmt.Errorf("the instance of tenant %s is not running: it exited (%v)", name, exitReason(proc))
	}
	if err := probe(ctx, s.instance(st).Monitor); err != nil {
		return fmt.Errorf("the instance of tenant %s is unhealthy: %w", name, err)
	}
	return nil
}

// Remove stops the tenant's instance (SIGTERM, then SIGKILL after
// StopTimeout or when ctx ends) and deletes its directory with its store.
// A tenant without an instance is not an error.
func (p *Provisioner) Remove(ctx context.Context, name string) error {
	s, err := p.settings()
	if err != nil {
		return err
	}
	dir, err := s.tenantDir(name)
	if err != nil {
		return err
	}
	t, release, err := p.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer release()

	log := s.log.With("tenant", name)
	if proc := p.current(t); proc != nil {
		p.stop(ctx, s, proc, log)
		p.mu.Lock()
		t.proc = nil
		p.mu.Unlock()
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the instance of tenant %s: %w", name, err)
	}
	log.Info("dedicated nats instance removed")
	return nil
}

// Close stops every instance this Provisioner started, each with
// StopTimeout to stop before it is killed, and leaves their directories
// for the next start. Later calls return ErrClosed.
func (p *Provisioner) Close() {
	s, err := p.settings()
	if err != nil {
		s = settings{stopTimeout: cmp.Or(p.StopTimeout, DefaultStopTimeout), log: cmp.Or(p.Logger, slog.New(slog.DiscardHandler))}
	}
	p.mu.Lock()
	p.closed = true
	procs := make(map[string]*process)
	for name, t := range p.tenants {
		if t.proc != nil {
			procs[name] = t.proc
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for name, proc := range procs {
		wg.Go(func() { p.stop(context.Background(), s, proc, s.log.With("tenant", name)) })
	}
	wg.Wait()
}
