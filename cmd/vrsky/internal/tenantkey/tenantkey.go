// Package tenantkey keeps a tenant's API key in a file for VRSky's own
// commands (`vrsky apply`, `vrsky demo`, the benchmarks): the first use
// creates the tenant with the platform admin key and keeps the key it
// gets; later uses read it back.
//
// It talks to the API through the generated client only and writes no file
// but the key file it is given.
package tenantkey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/vrsky/vrsky/client"
)

// ErrLost means the tenant exists but the key kept for it is gone.
var ErrLost = errors.New("tenant exists but its API key was not kept here")

// Ensure returns a client for tenant: with the key kept in keyFile when it
// still works, otherwise by creating the tenant with the platform admin
// client and keeping its first key in keyFile (mode 0600). created says
// which happened.
func Ensure(ctx context.Context, admin *client.API, tenant, keyFile string) (c *client.API, created bool, err error) {
	if b, err := os.ReadFile(keyFile); err == nil {
		c := admin.WithKey(string(b))
		if r, err := c.ListIntegrationsWithResponse(ctx, &client.ListIntegrationsParams{Limit: client.Ptr[int64](1)}); err == nil && r.StatusCode() == http.StatusOK {
			return c, false, nil
		}
	}
	r, err := admin.CreateTenantWithResponse(ctx, client.CreateTenantJSONRequestBody{Id: tenant, Name: tenant})
	if err == nil && r.StatusCode() == http.StatusConflict {
		return nil, false, fmt.Errorf("tenant %s: %w (%s)", tenant, ErrLost, keyFile)
	}
	if err := client.Check("create tenant "+tenant, r, err, http.StatusCreated, http.StatusAccepted); err != nil {
		return nil, false, err
	}
	if r.JSON202 == nil {
		return nil, false, fmt.Errorf("create tenant %s: the answer holds no API key", tenant)
	}
	key := r.JSON202.ApiKey.Secret
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("keep the tenant's API key: %w", err)
	}
	if err := admin.AwaitTenant(ctx, tenant); err != nil {
		_ = os.Remove(keyFile) // a key that will never work
		return nil, false, err
	}
	return admin.WithKey(key), true, nil
}
