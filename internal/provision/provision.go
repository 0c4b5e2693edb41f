// Package provision gives tenants NATS instances of their own: the
// Provisioner interface the TenantPlacement workflow's activities drive, and
// (in its subpackages) the implementations that start instances on this
// machine (local) or in a Kubernetes cluster (kubernetes).
package provision

import (
	"context"
	"errors"

	"github.com/vrsky/vrsky/dataplane"
)

// ErrNotFound means the tenant has no instance.
var ErrNotFound = errors.New("the tenant has no dedicated instance")

// Provisioner creates, checks and removes tenants' dedicated NATS
// instances. Every method is idempotent and safe to call again after a
// crash halfway through.
type Provisioner interface {
	// Ensure makes the tenant's instance exist and run — creating it, or
	// starting it again when it stopped or failed — and returns how the
	// platform reaches it. Calls for one tenant return the same credentials
	// for as long as the instance exists. It returns once the instance
	// accepts connections with JetStream enabled, or ctx ends.
	Ensure(ctx context.Context, tenant string) (dataplane.Instance, error)
	// Check returns nil when the tenant's instance serves JetStream, an
	// error saying what is wrong otherwise, and ErrNotFound when it has none.
	Check(ctx context.Context, tenant string) error
	// Remove stops the tenant's instance and deletes it with its data.
	// Removing an instance that does not exist is not an error.
	Remove(ctx context.Context, tenant string) error
}
