package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// PutSecret stores value as the secret name of the client's tenant
// (PUT /v1/secrets/{name}); connector configs refer to it as
// {secret: name}. It needs a key of that tenant with scope write.
func (c *Client) PutSecret(ctx context.Context, name, value string) error {
	body, err := json.Marshal(map[string]string{"value": value})
	if err != nil {
		return err
	}
	st, raw, err := c.Do(ctx, http.MethodPut, "/v1/secrets/"+url.PathEscape(name), "application/json", body, nil)
	if err != nil {
		return fmt.Errorf("store secret %s: %w", name, err)
	}
	if st/100 != 2 {
		return fmt.Errorf("store secret %s: %w", name, &StatusError{Status: st, Body: raw})
	}
	return nil
}

// Egress is a tenant's egress policy as PATCH /v1/tenants/{id} takes it.
type Egress struct {
	AllowPrivate bool     `json:"allowPrivate,omitempty"`
	AllowHosts   []string `json:"allowHosts,omitempty"`
}

// TenantPatch is the body of PATCH /v1/tenants/{id}: only the sections
// given change.
type TenantPatch struct {
	Egress *Egress `json:"egress,omitempty"`
}

// PatchTenant changes what the platform decides for tenant
// (PATCH /v1/tenants/{id}). It needs the platform admin key.
func (c *Client) PatchTenant(ctx context.Context, tenant string, patch TenantPatch) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	st, raw, err := c.Do(ctx, http.MethodPatch, "/v1/tenants/"+url.PathEscape(tenant), "application/json", body, nil)
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", tenant, err)
	}
	if st/100 != 2 {
		return fmt.Errorf("update tenant %s: %w", tenant, &StatusError{Status: st, Body: raw})
	}
	return nil
}
