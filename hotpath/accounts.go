package hotpath

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Accounts gives the JetStream context of each tenant's NATS account: a
// tenant's integration streams and its DLQ live there. Desired state,
// status, leases and message state stay in the platform's own account.
type Accounts interface {
	JetStream(ctx context.Context, tenant string) (jetstream.JetStream, error)
}

// SharedAccount keeps every tenant in one account: isolation then rests on
// VRSky's subject and stream names alone. Tests and single-account
// deployments use it; the dev stack gives each tenant its own account.
type SharedAccount struct{ JS jetstream.JetStream }

// JetStream returns the shared context.
func (a SharedAccount) JetStream(context.Context, string) (jetstream.JetStream, error) {
	return a.JS, nil
}
