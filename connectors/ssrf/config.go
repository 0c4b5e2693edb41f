package ssrf

import "errors"

// ErrTenantEgress is the error for a connector config that tries to set
// its own egress.
var ErrTenantEgress = errors.New(`allowPrivate and allowHosts are not connector options: egress is the platform's decision, not the tenant's; ` +
	`remove them from the config and ask a platform admin to set the tenant's egress policy (PATCH /v1/tenants/{id} with {"egress": {"allowPrivate": …, "allowHosts": […]}})`)

// PlatformDecides is a connector config field only the platform may set.
// Connectors that once let a tenant widen its own egress keep those fields
// (allowPrivate, allowHosts) as PlatformDecides, hidden from their schema,
// so that a config still setting them is refused with ErrTenantEgress
// rather than with "unknown field".
type PlatformDecides struct{}

// UnmarshalJSON refuses every value.
func (*PlatformDecides) UnmarshalJSON([]byte) error { return ErrTenantEgress }
