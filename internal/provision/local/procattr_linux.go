package local

import "syscall"

// procAttr puts an instance in its own process group, so that a terminal's
// Ctrl-C reaches only vrsky, which stops its instances in order, and has
// the kernel send the instance SIGTERM when vrsky dies, however it dies: a
// kill -9 of vrsky leaves no instance behind holding its ports and store.
// internal/pgcluster does the same for its PostgreSQL; see
// procattr_other.go for systems without a parent-death signal.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
