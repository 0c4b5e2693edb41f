package sdk

import "context"

// EgressPolicy is where a tenant's connectors may connect. It is the
// platform's decision, set per tenant by an admin; nothing in a tenant's
// config widens it. The zero value allows public addresses only.
// Link-local and cloud metadata addresses are refused whatever it says.
type EgressPolicy struct {
	// AllowPrivate allows loopback, private and other non-public
	// addresses (never link-local or metadata ones).
	AllowPrivate bool `json:"allowPrivate,omitempty" doc:"Allow loopback and private addresses (never link-local or metadata ones)."`
	// AllowHosts lists hosts ("erp.internal", "10.0.0.5") or host:port
	// pairs allowed whatever their address class (never link-local or
	// metadata ones).
	AllowHosts []string `json:"allowHosts,omitempty" doc:"Hosts or host:port pairs allowed even when private."`
}

// Tenancy completes a connector's Env with what the platform decided for its
// tenant: the tenant's secrets, the environment variables the operator lets
// tenants read, and the tenant's egress policy. Implementations are safe for
// concurrent use and must never hand one tenant's secrets to another.
type Tenancy interface {
	// Complete fills env.Secrets, env.LookupEnv and env.Egress for
	// env.Tenant.
	Complete(ctx context.Context, env *Env) error
}
