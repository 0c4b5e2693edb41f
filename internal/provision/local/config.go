package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vrsky/vrsky/internal/natscluster"
)

// Names of the files in a tenant's directory.
const (
	stateFile   = "instance.json"
	configFile  = "nats.conf"
	storeDir    = "jetstream"
	logFile     = "nats.log"    // the server's own log, rotated by the server
	processFile = "process.log" // the process's stdout and stderr of its last start
	pidFile     = "nats.pid"    // written by the server
)

// user is the platform's user on every instance.
const user = "vrsky"

// maxLogBytes is the size at which the server starts a new log file; it
// keeps three.
const maxLogBytes = 10 << 20

// maxStateBytes bounds what is read of instance.json.
const maxStateBytes = 64 << 10

// state is what instance.json keeps across restarts: the ports the
// instance listened on last (reused while free) and its password.
type state struct {
	Port        int    `json:"port"`
	MonitorPort int    `json:"monitor_port"`
	User        string `json:"user"`
	Password    string `json:"password"` //nolint:gosec // the instance's own credential, in a 0600 file of the platform
}

var password = regexp.MustCompile(`^[0-9a-f]{64}$`)

// validate refuses a state file that was not written by this package.
func (s state) validate() error {
	for _, p := range []int{s.Port, s.MonitorPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d out of range", p)
		}
	}
	if s.User != user {
		return fmt.Errorf("user %q: want %q", s.User, user)
	}
	if !password.MatchString(s.Password) {
		return errors.New("the password is not 64 hex digits")
	}
	return nil
}

// newState is the state of an instance never started: no ports yet and a
// fresh password of 32 random bytes.
func newState() (state, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return state{}, fmt.Errorf("generate the instance's password: %w", err)
	}
	return state{User: user, Password: hex.EncodeToString(b)}, nil
}

// readState loads dir's instance.json; ok is false when there is none.
func readState(dir string) (s state, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return state{}, false, err
	}
	if len(b) > maxStateBytes {
		return state{}, false, fmt.Errorf("%s: larger than %d bytes", f.Name(), maxStateBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return state{}, false, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := s.validate(); err != nil {
		return state{}, false, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return s, true, nil
}

// writeState replaces dir's instance.json in one rename.
func writeState(dir string, s state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), append(b, '\n'))
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so that a crash leaves the old file or the new one, never half of one.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// safePath is what a path written into the configuration may hold: no
// quotes, backslashes, '$' or control characters that nats-server's
// parser would read as syntax.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9/._ -]{0,511}$`)

// hostName is a DNS name or an IPv4 address (IPv6 addresses are checked
// with net.ParseIP).
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

func validHost(h string) bool { return net.ParseIP(h) != nil || hostName.MatchString(h) }

// serverConfig is one instance's nats-server configuration.
type serverConfig struct {
	Tenant                string
	Host                  string
	Port, MonitorPort     int
	Password              string
	Dir                   string // the tenant's directory
	MaxStorage, MaxMemory int64
}

// render writes the configuration in nats-server's syntax: one account
// (no operator mode) whose only user is the platform's, JetStream with its
// store in the tenant's directory and its limits, the monitoring endpoint,
// and the server's log with a bounded size.
func (c serverConfig) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# VRSky: the dedicated NATS instance of tenant %s.\n", c.Tenant)
	b.WriteString("# Written at every start from instance.json; edits are lost.\n")
	fmt.Fprintf(&b, "server_name: %q\n", "vrsky-"+c.Tenant)
	fmt.Fprintf(&b, "host: %q\n", c.Host)
	fmt.Fprintf(&b, "port: %d\n", c.Port)
	fmt.Fprintf(&b, "http: %q\n", net.JoinHostPort(c.Host, strconv.Itoa(c.MonitorPort)))
	fmt.Fprintf(&b, "max_payload: %s\n", natscluster.DefaultMaxPayload)
	fmt.Fprintf(&b, "authorization {\n  user: %q\n  password: %q\n}\n", user, c.Password)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_file_store: %d\n  max_memory_store: %d\n}\n",
		filepath.Join(c.Dir, storeDir), c.MaxStorage, c.MaxMemory)
	fmt.Fprintf(&b, "pid_file: %q\n", filepath.Join(c.Dir, pidFile))
	fmt.Fprintf(&b, "log_file: %q\nlogfile_size_limit: %d\nlogfile_max_num: 3\nlogtime_utc: true\n",
		filepath.Join(c.Dir, logFile), maxLogBytes)
	return b.String()
}
