package natsauth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Subjects of the server's account-claims API (system account only).
const (
	claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"
	claimsDeleteSubject = "$SYS.REQ.CLAIMS.DELETE"
)

// Admin creates, updates and deletes tenant accounts on the server, through
// a connection of the system account.
type Admin struct {
	keys *Keys
	nc   *nats.Conn
}

// NewAdmin returns an Admin using nc, which must be connected with
// keys.SystemUser credentials.
func NewAdmin(keys *Keys, nc *nats.Conn) *Admin { return &Admin{keys: keys, nc: nc} }

// PutTenant creates or updates tenant's account with limits and returns the
// account's ID. It is idempotent.
func (a *Admin) PutTenant(ctx context.Context, tenant string, limits Limits) (string, error) {
	token, err := a.keys.TenantAccountJWT(tenant, limits)
	if err != nil {
		return "", err
	}
	if err := a.request(ctx, claimsUpdateSubject, token); err != nil {
		return "", fmt.Errorf("put the nats account of tenant %s: %w", tenant, err)
	}
	return a.keys.TenantAccountID(tenant)
}

// DeleteTenant deletes tenant's account: its connections are closed and it
// can no longer connect. Delete its streams first. Deleting an account that
// does not exist succeeds.
func (a *Admin) DeleteTenant(ctx context.Context, tenant string) error {
	pub, err := a.keys.TenantAccountID(tenant)
	if err != nil {
		return err
	}
	gc := jwt.NewGenericClaims(public(a.keys.Operator))
	gc.Data["accounts"] = []any{pub}
	token, err := gc.Encode(a.keys.Operator)
	if err != nil {
		return fmt.Errorf("sign the account deletion: %w", err)
	}
	if err := a.request(ctx, claimsDeleteSubject, token); err != nil {
		return fmt.Errorf("delete the nats account of tenant %s: %w", tenant, err)
	}
	return nil
}

// claimsResponse is the server's answer to a claims request.
type claimsResponse struct {
	Data *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

func (a *Admin) request(ctx context.Context, subject, token string) error {
	msg, err := a.nc.RequestWithContext(ctx, subject, []byte(token))
	if err != nil {
		return err
	}
	var resp claimsResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("unreadable answer %q: %w", msg.Data, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("server refused (%d): %s", resp.Error.Code, resp.Error.Description)
	}
	if resp.Data == nil {
		return fmt.Errorf("unexpected answer %q", msg.Data)
	}
	return nil
}
