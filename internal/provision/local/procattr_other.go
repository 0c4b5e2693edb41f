//go:build !linux

package local

import "syscall"

// procAttr puts an instance in its own process group, so that a terminal's
// Ctrl-C reaches only vrsky, which stops its instances in order (Close).
//
// macOS and the BSDs have no parent-death signal (Linux's Pdeathsig): if
// vrsky is killed without the chance to call Close (kill -9, a crash), its
// instances keep running. The next Ensure of such a tenant finds its ports
// taken and starts a second server on new ports over the same store;
// stop the orphan first (its pid is in the tenant's nats.pid).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
