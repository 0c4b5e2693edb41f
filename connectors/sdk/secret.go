package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
)

// Secret is a reference to a sensitive value in a connector config, written
// as {"env": "NAME"} (an environment variable of the runner that the
// operator lets tenants read) or {"secret": "NAME"} (a tenant secret stored
// encrypted by the platform).
// Inline values are refused so that no stored spec ever holds one.
//
// A Secret never prints its value: String, logs and JSON show only the
// reference.
type Secret struct {
	Env    string `json:"env,omitempty"`
	Secret string `json:"secret,omitempty"`
}

var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

// ValidSecretName reports whether name can name a tenant secret or an
// environment variable in a reference.
func ValidSecretName(name string) bool { return secretName.MatchString(name) }

// UnmarshalJSON accepts exactly one of env or secret.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '"' {
		return errors.New(`secrets cannot be inline: write {"env": "NAME"} or {"secret": "NAME"}`)
	}
	type plain Secret
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf(`secret: want {"env": "NAME"} or {"secret": "NAME"}: %w`, err)
	}
	*s = Secret(p)
	return s.Validate()
}

// Validate checks that exactly one well-formed reference is set.
func (s Secret) Validate() error {
	switch {
	case s.Env != "" && s.Secret != "":
		return errors.New("secret: set env or secret, not both")
	case s.Env != "":
		if !secretName.MatchString(s.Env) {
			return fmt.Errorf("secret: invalid environment variable name %q", s.Env)
		}
	case s.Secret != "":
		if !secretName.MatchString(s.Secret) {
			return fmt.Errorf("secret: invalid secret name %q", s.Secret)
		}
	default:
		return errors.New(`secret: want {"env": "NAME"} or {"secret": "NAME"}`)
	}
	return nil
}

// IsZero reports whether no reference is set (an optional secret left out).
func (s Secret) IsZero() bool { return s.Env == "" && s.Secret == "" }

// String shows the reference, never the value.
func (s Secret) String() string {
	if s.Env != "" {
		return "env:" + s.Env
	}
	if s.Secret != "" {
		return "secret:" + s.Secret
	}
	return "unset"
}

// LogValue keeps secrets out of logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// SecretResolver looks up a tenant secret by name.
type SecretResolver func(ctx context.Context, name string) (string, error)

// Resolve returns the secret's value: an environment variable through
// env.LookupEnv (only those the operator lets tenants read; never the
// process environment directly), or a tenant secret through env.Secrets. A
// missing value is an error.
func (s Secret) Resolve(ctx context.Context, env Env) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	if s.Env != "" {
		if env.LookupEnv == nil {
			return "", fmt.Errorf("secret %s: environment variables are not available to connectors here; use a tenant secret {\"secret\": NAME}", s)
		}
		v, ok := env.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("secret %s: environment variable is not set, or not allowed for tenants by the operator (VRSKY_TENANT_ENV_ALLOW)", s)
		}
		return v, nil
	}
	if env.Secrets == nil {
		return "", fmt.Errorf("secret %s: tenant secrets are not available here", s)
	}
	v, err := env.Secrets(ctx, s.Secret)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", s, err)
	}
	return v, nil
}
