package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/store"
)

// Authenticator finds who a tenant key's secret belongs to. It returns an
// error wrapping store.ErrUnauthenticated for unknown, revoked and deleted
// tenants' keys; any other error means it could not answer.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (store.Principal, error)
}

// Principal is who a request acts as: a tenant's key or the platform admin.
type Principal = store.Principal

// BearerScheme names the security scheme of every authenticated operation:
// `Authorization: Bearer <key>`.
const BearerScheme = "bearer"

// requireScopes is an operation's security requirement: any one of the
// scopes (each a separate requirement, so OpenAPI reads them as
// alternatives).
func requireScopes(scopes ...store.Scope) []map[string][]string {
	reqs := make([]map[string][]string, len(scopes))
	for i, s := range scopes {
		reqs[i] = map[string][]string{BearerScheme: {string(s)}}
	}
	return reqs
}

type principalKey struct{}

// PrincipalFrom returns the principal the auth middleware put in ctx; false
// for operations that declare no security.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// auth is the middleware guarding every operation that declares Security.
// Operations without Security (health, OpenAPI, docs) pass untouched.
type auth struct {
	api       huma.API
	keys      Authenticator // nil: tenant keys never authenticate
	adminHash []byte        // SHA-256 of the platform admin key; nil: none
	log       *slog.Logger
	// keyLimits is per API key (the platform admin's under adminLimitKey),
	// tenantLimits per tenant.
	keyLimits, tenantLimits *limiters
}

// adminLimitKey is the platform admin key's bucket; tenant key IDs start
// with "key-", so it cannot be one of theirs.
const adminLimitKey = "platform-admin"

func bearerSecurityScheme() *huma.SecurityScheme {
	return &huma.SecurityScheme{
		Type:   "http",
		Scheme: "bearer",
		Description: "An API key: `Authorization: Bearer vrsky_…`. A tenant's key acts on its tenant with its scopes " +
			"(read, write, dlq, admin); the platform admin key (role platform-admin) manages tenants.",
	}
}

func (a *auth) middleware(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if op == nil || len(op.Security) == 0 {
		next(ctx)
		return
	}
	secret, ok := bearerToken(ctx.Header("Authorization"))
	if !ok {
		a.unauthorized(ctx)
		return
	}
	p, err := a.authenticate(ctx.Context(), secret)
	if errors.Is(err, store.ErrUnauthenticated) {
		a.unauthorized(ctx)
		return
	}
	if err != nil {
		// The error never contains the key.
		a.log.ErrorContext(ctx.Context(), "authenticate request", "operation", op.OperationID, "error", err)
		ctx.SetHeader("Retry-After", "2")
		_ = huma.WriteErr(a.api, ctx, http.StatusServiceUnavailable, "authentication is unavailable, retry later")
		return
	}
	if !a.withinRate(ctx, p) {
		return
	}
	if !allowed(p, op.Security) {
		ctx.SetHeader("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(neededScopes(op.Security), " ")+`"`)
		_ = huma.WriteErr(a.api, ctx, http.StatusForbidden,
			"this key may not call "+op.OperationID+"; it needs one of the scopes: "+strings.Join(neededScopes(op.Security), ", "))
		return
	}
	next(huma.WithValue(ctx, principalKey{}, p))
}

// withinRate takes a token from the key's bucket and then from its tenant's
// (the platform admin has no tenant); over either it answers 429 with
// Retry-After, gives back the key's token and reports false.
func (a *auth) withinRate(ctx huma.Context, p Principal) bool {
	now := time.Now()
	key := p.KeyID
	if p.Admin {
		key = adminLimitKey
	}
	keyToken, wait := a.keyLimits.reserve(key, now)
	if wait > 0 {
		a.tooManyRequests(ctx, wait, "this API key is over its request rate")
		return false
	}
	if p.Admin {
		return true
	}
	if _, wait = a.tenantLimits.reserve(p.TenantID, now); wait > 0 {
		if keyToken != nil {
			keyToken.CancelAt(now)
		}
		a.tooManyRequests(ctx, wait, "the tenant is over its request rate")
		return false
	}
	return true
}

func (a *auth) tooManyRequests(ctx huma.Context, wait time.Duration, detail string) {
	ctx.SetHeader("Retry-After", retryAfterSeconds(wait))
	_ = huma.WriteErr(a.api, ctx, http.StatusTooManyRequests, detail+", retry later")
}

// authenticate checks the platform admin key first, in constant time, then
// asks the key store.
func (a *auth) authenticate(ctx context.Context, secret string) (Principal, error) {
	if len(a.adminHash) > 0 && subtle.ConstantTimeCompare(store.HashSecret(secret), a.adminHash) == 1 {
		return Principal{Admin: true, Scopes: []store.Scope{store.ScopePlatformAdmin}}, nil
	}
	if a.keys == nil {
		return Principal{}, store.ErrUnauthenticated
	}
	return a.keys.Authenticate(ctx, secret)
}

// unauthorized answers 401 without saying whether the key was missing,
// unknown or revoked.
func (a *auth) unauthorized(ctx huma.Context) {
	ctx.SetHeader("WWW-Authenticate", `Bearer realm="vrsky"`)
	_ = huma.WriteErr(a.api, ctx, http.StatusUnauthorized, "missing, invalid or revoked API key")
}

// bearerToken extracts the key from an Authorization header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// allowed reports whether p meets one of the bearer requirements: every
// scope of at least one of them.
func allowed(p Principal, reqs []map[string][]string) bool {
	for _, req := range reqs {
		scopes, ok := req[BearerScheme]
		if !ok {
			continue
		}
		all := true
		for _, s := range scopes {
			all = all && p.Allows(store.Scope(s))
		}
		if all {
			return true
		}
	}
	return false
}

func neededScopes(reqs []map[string][]string) []string {
	var out []string
	for _, req := range reqs {
		out = append(out, strings.Join(req[BearerScheme], "+"))
	}
	return out
}

// withAuthErrors lists an authenticated operation's error statuses.
func withAuthErrors(statuses ...int) []int {
	return append([]int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}, statuses...)
}

// storeError turns a store error into the operation's problem response,
// logging only what is the server's fault, with the request's ID from ctx.
func storeError(ctx context.Context, log *slog.Logger, op, tenant string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return huma.Error404NotFound("not found")
	case errors.Is(err, store.ErrConflict):
		return huma.Error409Conflict("already exists")
	case errors.Is(err, store.ErrInvalid):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, store.ErrForbidden):
		return huma.Error403Forbidden(err.Error())
	default:
		log.ErrorContext(ctx, "operation failed", "operation", op, "tenant", tenant, "error", err)
		return huma.Error500InternalServerError("internal error")
	}
}
