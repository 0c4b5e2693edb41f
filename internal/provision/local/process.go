package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// start writes the instance's state and configuration and starts its
// process, on st's ports while they are free and on new ones otherwise
// (st is updated and saved).
func (p *Provisioner) start(s settings, t *tenant, name, dir string, st *state, log *slog.Logger) (*process, error) {
	ports, err := choosePorts(s.host, st.Port, st.MonitorPort)
	if err != nil {
		return nil, fmt.Errorf("start the instance of tenant %s: %w", name, err)
	}
	if (st.Port != 0 && ports[0] != st.Port) || (st.MonitorPort != 0 && ports[1] != st.MonitorPort) {
		log.Warn("a port of the dedicated nats instance is taken; moving it", "port", ports[0], "monitor_port", ports[1])
	}
	st.Port, st.MonitorPort = ports[0], ports[1]
	if err := writeState(dir, *st); err != nil {
		return nil, fmt.Errorf("save the instance of tenant %s: %w", name, err)
	}
	conf := filepath.Join(dir, configFile)
	cfg := serverConfig{
		Tenant: name, Host: s.host, Port: st.Port, MonitorPort: st.MonitorPort, Password: st.Password,
		Dir: dir, MaxStorage: s.maxStorage, MaxMemory: s.maxMemory,
	}
	if err := writeFileAtomic(conf, []byte(cfg.render())); err != nil {
		return nil, fmt.Errorf("write the configuration of tenant %s: %w", name, err)
	}

	cmd, err := s.command(conf)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, processFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the process log of tenant %s: %w", name, err)
	}
	defer out.Close() // the child holds its own descriptor
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = procAttr()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the instance of tenant %s: %w", name, err)
	}
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		log.Info("dedicated nats instance exited", "pid", cmd.Process.Pid, "status", exitReasonOf(err))
		proc.err = err
		close(proc.exited)
	}()
	log.Info("dedicated nats instance started", "pid", cmd.Process.Pid, "port", st.Port, "monitor_port", st.MonitorPort)

	p.mu.Lock()
	closed := p.closed
	if !closed {
		t.proc = proc
	}
	p.mu.Unlock()
	if closed {
		p.stop(context.Background(), s, proc, log)
		return nil, ErrClosed
	}
	return proc, nil
}

// stop sends the process SIGTERM, kills it when it has not exited after
// StopTimeout or when ctx ends, and waits until it is reaped.
func (p *Provisioner) stop(ctx context.Context, s settings, proc *process, log *slog.Logger) {
	if !proc.running() {
		return
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(s.stopTimeout)
	defer timer.Stop()
	select {
	case <-proc.exited:
		return
	case <-timer.C:
		log.Warn("dedicated nats instance did not stop in time; killing it", "pid", proc.cmd.Process.Pid, "timeout", s.stopTimeout)
	case <-ctx.Done():
	}
	_ = proc.cmd.Process.Kill()
	<-proc.exited
}

// choosePorts returns the client and monitoring ports: the wanted ones
// when free on host, new free ones otherwise, never the same twice.
func choosePorts(host string, want ...int) ([2]int, error) {
	var ports [2]int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for i, w := range want {
		var l net.Listener
		var err error
		if w > 0 {
			l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(w)))
		}
		if w <= 0 || err != nil {
			l, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				return ports, fmt.Errorf("find a free port on %s: %w", host, err)
			}
		}
		held = append(held, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// healthClient asks instances' monitoring endpoints; they are on this
// machine and answer at once, or not at all.
var healthClient = &http.Client{
	Timeout: 2 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// probe asks the instance's /healthz?js-enabled-only=true once.
func probe(ctx context.Context, monitor string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, monitor+"/healthz?js-enabled-only=true", nil)
	if err != nil {
		return err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// waitHealthy polls the instance's health until it answers 200, the
// process exits (the error then holds the end of its logs), or ctx ends.
func waitHealthy(ctx context.Context, s settings, st state, proc *process, dir string) error {
	monitor := s.instance(st).Monitor
	wait := 20 * time.Millisecond
	for {
		err := probe(ctx, monitor)
		if err == nil {
			return nil
		}
		select {
		case <-proc.exited:
			return fmt.Errorf("the server exited (%v): %s", exitReason(proc), logTail(dir))
		case <-ctx.Done():
			return fmt.Errorf("%w (last health check: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// exitReason says how an exited process ended.
func exitReason(proc *process) string { return exitReasonOf(proc.err) }

// exitReasonOf says how a process ended, from what Wait returned.
func exitReasonOf(err error) string {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &exit):
		return exit.String()
	default:
		return err.Error()
	}
}

// logTail is the end of what the server wrote, for errors about a start.
func logTail(dir string) string {
	var parts []string
	for _, name := range []string{processFile, logFile} {
		b := tail(filepath.Join(dir, name), 1024)
		if len(b) == 0 {
			continue
		}
		parts = append(parts, name+": "+strings.TrimSpace(string(b)))
	}
	if len(parts) == 0 {
		return "no log"
	}
	return strings.Join(parts, "; ")
}

// tail returns up to n bytes from the end of the file at path.
func tail(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return b
}
