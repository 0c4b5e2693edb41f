package natsauth

import (
	"fmt"
	"syscall"
)

// Overcommit is how many times the tenants' disk quotas together may
// exceed the disk JetStream really has on a standalone server. Most tenants
// use a small part of their quota; the real usage is watched instead (the
// server's storage used against the disk, see docs/adr/0016).
const Overcommit = 40

// MinStoreTenants is how many tenants with the default disk quota a
// standalone server admits whatever its free disk: a laptop with little
// free space still holds a thousand tenants (the real usage is what is
// watched, see docs/adr/0016).
const MinStoreTenants = 1200

// OvercommittedStore returns the max_file_store to give a standalone
// nats-server whose store lives in dir: Overcommit times three quarters of
// the free space (the share the server takes by default), and at least
// MinStoreTenants default disk quotas. A standalone server reserves each
// account's DiskBytes against max_file_store, so this is what lets it hold
// more quota than disk. Set it only where someone watches the real disk
// usage.
func OvercommittedStore(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize) //nolint:gosec // block counts fit in int64
	return max(free/4*3*Overcommit, MinStoreTenants*DefaultLimits.DiskBytes), nil
}
