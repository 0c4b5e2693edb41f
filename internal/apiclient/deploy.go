package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ErrTenantKeyLost means the tenant exists but the key kept for it is gone.
var ErrTenantKeyLost = errors.New("tenant exists but its API key was not kept here")

// EnsureTenant returns a client for tenant: with the key kept in keyFile when
// it still works, otherwise by creating the tenant with the platform admin
// client and keeping its first key in keyFile (mode 0600). created says
// which happened.
func EnsureTenant(ctx context.Context, admin *Client, tenant, keyFile string) (c *Client, created bool, err error) {
	if b, err := os.ReadFile(keyFile); err == nil {
		c := admin.WithKey(string(b))
		if st, _, err := c.Do(ctx, http.MethodGet, "/v1/integrations?limit=1", "", nil, nil); err == nil && st == http.StatusOK {
			return c, false, nil
		}
	}
	var answer struct {
		APIKey struct {
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	body, _ := json.Marshal(map[string]string{"id": tenant, "name": tenant})
	st, raw, err := admin.Do(ctx, http.MethodPost, "/v1/tenants", "application/json", body, &answer)
	if err != nil {
		return nil, false, fmt.Errorf("create tenant %s: %w", tenant, err)
	}
	switch {
	case st == http.StatusConflict:
		return nil, false, fmt.Errorf("tenant %s: %w (%s)", tenant, ErrTenantKeyLost, keyFile)
	case st != http.StatusCreated && st != http.StatusAccepted: // 202: provisioning
		return nil, false, fmt.Errorf("create tenant %s: %s", tenant, Problem(st, raw))
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(keyFile, []byte(answer.APIKey.Secret+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("keep the tenant's API key: %w", err)
	}
	if err := admin.awaitActive(ctx, tenant); err != nil {
		_ = os.Remove(keyFile) // a key that will never work
		return nil, false, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	return admin.WithKey(answer.APIKey.Secret), true, nil
}

// awaitActive polls the tenant (with the admin client) until its
// provisioning ends: nil once it is active, its failure reason when it
// failed.
func (c *Client) awaitActive(ctx context.Context, tenant string) error {
	for {
		var t struct {
			Status        string `json:"status"`
			FailureReason string `json:"failure_reason"`
		}
		st, _, err := c.Do(ctx, http.MethodGet, "/v1/tenants/"+tenant, "", nil, &t)
		if err == nil && st == http.StatusOK {
			switch t.Status {
			case "active":
				return nil
			case "failed":
				return fmt.Errorf("provisioning failed: %s", t.FailureReason)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still provisioning: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Deployed is the outcome of Deploy.
type Deployed struct {
	Name    string
	Version int
	Status  string // running or stopped
}

// Deploy stores spec (YAML or JSON) as integration name — a new integration,
// or a new version of an existing one — deploys that version, stops it when
// stopped is set, and waits until a runner reports the wanted state. A runner
// that cannot start it is an error with the runner's reason.
func (c *Client) Deploy(ctx context.Context, name string, spec []byte, reason string, stopped bool) (Deployed, error) {
	var it struct {
		Version int `json:"version"`
	}
	path := "/v1/integrations/" + name
	st, raw, err := c.Do(ctx, http.MethodPost, "/v1/integrations", "application/yaml", spec, &it)
	if err == nil && st == http.StatusConflict {
		st, raw, err = c.Do(ctx, http.MethodPut, path, "application/yaml", spec, &it)
	}
	if err != nil {
		return Deployed{}, fmt.Errorf("store integration %s: %w", name, err)
	}
	if st != http.StatusCreated && st != http.StatusOK {
		return Deployed{}, fmt.Errorf("store integration %s: %s", name, Problem(st, raw))
	}
	want := Deployed{Name: name, Version: it.Version, Status: "running"}
	actions := []string{"deploy"}
	if stopped {
		actions = append(actions, "stop")
		want.Status = "stopped"
	}
	for _, action := range actions {
		req := map[string]any{"reason": reason}
		if action == "deploy" {
			req["version"] = it.Version
		}
		body, _ := json.Marshal(req)
		st, raw, err = c.Do(ctx, http.MethodPost, path+"/"+action, "application/json", body, nil)
		if err != nil {
			return want, fmt.Errorf("%s integration %s: %w", action, name, err)
		}
		if st != http.StatusAccepted {
			return want, fmt.Errorf("%s integration %s: %s", action, name, Problem(st, raw))
		}
	}
	return want, c.await(ctx, want)
}

// await polls the integration's status until a runner reports want.
func (c *Client) await(ctx context.Context, want Deployed) error {
	for {
		var s struct {
			Runner *struct {
				Version   int    `json:"version"`
				Status    string `json:"status"`
				LastError string `json:"last_error"`
			} `json:"runner"`
		}
		st, _, err := c.Do(ctx, http.MethodGet, "/v1/integrations/"+want.Name+"/status", "", nil, &s)
		if err == nil && st == http.StatusOK && s.Runner != nil && s.Runner.Version == want.Version {
			switch s.Runner.Status {
			case want.Status:
				return nil
			case "degraded":
				return fmt.Errorf("integration %s version %d did not start: %s", want.Name, want.Version, s.Runner.LastError)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("integration %s version %d: no runner reported %s in time: is a runner running?", want.Name, want.Version, want.Status)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
