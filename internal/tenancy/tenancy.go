// Package tenancy is the platform's sdk.Tenancy: it gives each connector what
// the platform decided for the connector's tenant — that tenant's secrets,
// the environment variables the operator lets tenants read, and the tenant's
// egress policy.
//
// It must never hand one tenant anything of another's, and never let a
// tenant read an environment variable the operator did not allow.
package tenancy

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// EnvAllowVar is the environment variable holding the operator's allow-list
// of environment variable names tenants may read: glob patterns (path.Match
// syntax) separated by commas or spaces. Empty, the default, allows none.
const EnvAllowVar = "VRSKY_TENANT_ENV_ALLOW"

// Platform completes connector environments. The zero value gives tenants no
// secrets, no environment variables and the default egress policy (public
// addresses only).
type Platform struct {
	// EnvAllow lists the glob patterns of environment variable names
	// tenants may read with {"env": NAME}.
	EnvAllow []string
	// Secrets returns the resolver of one tenant's secrets; nil gives
	// tenants none.
	Secrets func(tenant string) sdk.SecretResolver
	// Egress returns a tenant's egress policy; nil gives every tenant the
	// default one.
	Egress func(ctx context.Context, tenant string) (sdk.EgressPolicy, error)
}

// ParseEnvAllow splits an allow-list as written in EnvAllowVar and checks
// each pattern.
func ParseEnvAllow(s string) ([]string, error) {
	patterns := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern %q: %w", EnvAllowVar, p, err)
		}
	}
	return patterns, nil
}

// EnvAllowed reports whether tenants may read the environment variable name.
func (p *Platform) EnvAllowed(name string) bool {
	for _, pattern := range p.EnvAllow {
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

// lookupEnv reads name from the environment if tenants may read it.
func (p *Platform) lookupEnv(name string) (string, bool) {
	if !p.EnvAllowed(name) {
		return "", false
	}
	return os.LookupEnv(name)
}

// Complete fills env's Secrets, LookupEnv and Egress for env.Tenant.
func (p *Platform) Complete(ctx context.Context, env *sdk.Env) error {
	if p.Secrets != nil {
		env.Secrets = p.Secrets(env.Tenant)
	}
	env.LookupEnv = p.lookupEnv
	if p.Egress != nil {
		policy, err := p.Egress(ctx, env.Tenant)
		if err != nil {
			return fmt.Errorf("egress policy: %w", err)
		}
		env.Egress = policy
	}
	return nil
}
