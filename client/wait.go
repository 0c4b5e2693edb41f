package client

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// PollInterval is how often the waits below ask the API again.
var PollInterval = 100 * time.Millisecond

// CreateTenant creates tenant id (with id as its name) with the platform
// admin key and waits until its provisioning ends. It returns the tenant's
// first API key, which the API shows only once. A tenant that exists is an
// *Error with status 409; one whose provisioning failed is an error with
// the reason.
func (a *API) CreateTenant(ctx context.Context, id string) (key string, err error) {
	r, err := a.CreateTenantWithResponse(ctx, CreateTenantJSONRequestBody{Id: id, Name: id})
	if err := Check("create tenant "+id, r, err, http.StatusCreated, http.StatusAccepted); err != nil {
		return "", err
	}
	if r.JSON202 == nil {
		return "", fmt.Errorf("create tenant %s: the answer holds no API key", id)
	}
	return r.JSON202.ApiKey.Secret, a.AwaitTenant(ctx, id)
}

// AwaitTenant polls tenant id (with the admin key) until its provisioning
// ends: nil once it is active, the failure reason when it failed, an error
// when ctx ends first.
func (a *API) AwaitTenant(ctx context.Context, id string) error {
	for {
		r, err := a.GetTenantWithResponse(ctx, id)
		if err == nil && r.JSON200 != nil {
			switch r.JSON200.Status {
			case TenantStatusActive:
				return nil
			case TenantStatusFailed:
				return fmt.Errorf("tenant %s: provisioning failed: %s", id, deref(r.JSON200.FailureReason))
			}
		}
		if err := sleep(ctx); err != nil {
			return fmt.Errorf("tenant %s: still provisioning: %w", id, err)
		}
	}
}

// Deployed is the outcome of Deploy.
type Deployed struct {
	Name    string
	Version int64
	Status  string // running or stopped
}

// Deploy stores spec (YAML or JSON; it is sent as YAML, of which JSON is a
// part) as integration name — a new integration, or a new version of an existing one — deploys
// that version, stops it when stopped is set, and waits until a runner
// reports the wanted state. A runner that cannot start it is an error with
// the runner's reason.
func (a *API) Deploy(ctx context.Context, name string, spec []byte, reason string, stopped bool) (Deployed, error) {
	const contentType = "application/yaml"
	cr, err := a.CreateIntegrationWithBodyWithResponse(ctx, nil, contentType, bytes.NewReader(spec))
	var version int64
	switch {
	case err == nil && cr.StatusCode() == http.StatusConflict:
		ur, err := a.UpdateIntegrationWithBodyWithResponse(ctx, name, nil, contentType, bytes.NewReader(spec))
		if err := Check("store integration "+name, ur, err, http.StatusOK); err != nil {
			return Deployed{}, err
		}
		version = ur.JSON200.Version
	default:
		if err := Check("store integration "+name, cr, err, http.StatusCreated); err != nil {
			return Deployed{}, err
		}
		version = cr.JSON201.Version
	}
	want := Deployed{Name: name, Version: version, Status: "running"}
	dr, err := a.DeployIntegrationWithResponse(ctx, name, nil, DeployIntegrationJSONRequestBody{Reason: &reason, Version: &version})
	if err := Check("deploy integration "+name, dr, err, http.StatusAccepted); err != nil {
		return want, err
	}
	if stopped {
		want.Status = "stopped"
		sr, err := a.StopIntegrationWithResponse(ctx, name, nil, StopIntegrationJSONRequestBody{Reason: &reason})
		if err := Check("stop integration "+name, sr, err, http.StatusAccepted); err != nil {
			return want, err
		}
	}
	return want, a.awaitRunners(ctx, want)
}

// awaitRunners polls the integration's status until a runner reports want.
func (a *API) awaitRunners(ctx context.Context, want Deployed) error {
	for {
		r, err := a.GetIntegrationStatusWithResponse(ctx, want.Name)
		if err == nil && r.JSON200 != nil && r.JSON200.Runner != nil && r.JSON200.Runner.Version == want.Version {
			switch run := r.JSON200.Runner; string(run.Status) {
			case want.Status:
				return nil
			case "degraded":
				return fmt.Errorf("integration %s version %d did not start: %s", want.Name, want.Version, deref(run.LastError))
			}
		}
		if sleep(ctx) != nil {
			return fmt.Errorf("integration %s version %d: no runner reported %s in time: is a runner running?", want.Name, want.Version, want.Status)
		}
	}
}

// Change is a lifecycle change of an integration that the API accepted;
// it is carried out in the background (see AwaitChange).
type Change struct {
	ChangeAccepted
	// Body is the API's answer as it sent it.
	Body []byte
	// logMark is the newest entry of the execution log before the change
	// was asked for; the change's own entry comes after it.
	logMark int64
}

// Actions are the lifecycle changes ChangeIntegration asks for.
var Actions = []string{"deploy", "start", "stop", "delete"}

// ChangeIntegration asks integration id's lifecycle for a change — deploy
// (the latest version), start, stop or delete — recording reason in its
// execution log. It returns as soon as the change is accepted; AwaitChange
// waits for its outcome.
func (a *API) ChangeIntegration(ctx context.Context, id, action, reason string) (Change, error) {
	what := action + " integration " + id
	if !slices.Contains(Actions, action) {
		return Change{}, fmt.Errorf("%s: unknown action", what)
	}
	// The change's own entry in the execution log comes after the newest
	// one now. An integration without a log is the request's own 404.
	var mark int64
	events, err := a.RecentLogs(ctx, id, 1)
	switch {
	case err == nil && len(events) > 0:
		mark = events[0].Id
	case err != nil && !IsNotFound(err):
		return Change{}, fmt.Errorf("%s: %w", what, err)
	}
	var (
		resp     Response
		accepted *ChangeAccepted
		body     []byte
	)
	switch action {
	case "deploy":
		r, e := a.DeployIntegrationWithResponse(ctx, id, nil, DeployIntegrationJSONRequestBody{Reason: &reason})
		err = e
		if e == nil {
			resp, accepted, body = r, r.JSON202, r.Body
		}
	case "start":
		r, e := a.StartIntegrationWithResponse(ctx, id, nil, StartIntegrationJSONRequestBody{Reason: &reason})
		err = e
		if e == nil {
			resp, accepted, body = r, r.JSON202, r.Body
		}
	case "stop":
		r, e := a.StopIntegrationWithResponse(ctx, id, nil, StopIntegrationJSONRequestBody{Reason: &reason})
		err = e
		if e == nil {
			resp, accepted, body = r, r.JSON202, r.Body
		}
	case "delete":
		r, e := a.DeleteIntegrationWithResponse(ctx, id, nil)
		err = e
		if e == nil {
			resp, accepted, body = r, r.JSON202, r.Body
		}
	}
	if err := Check(what, resp, err, http.StatusAccepted); err != nil {
		return Change{}, err
	}
	if accepted == nil {
		return Change{}, fmt.Errorf("%s: the answer is not a change", what)
	}
	return Change{ChangeAccepted: *accepted, Body: body, logMark: mark}, nil
}

// AwaitChange waits until a change that ChangeIntegration had accepted for
// integration id is carried out: the integration is gone (delete), or the
// lifecycle recorded the change in the execution log once the runners
// reported the outcome — running (deploy, start) or stopped (stop). Any
// other outcome is an error with the reason recorded; so is ctx ending
// first.
func (a *API) AwaitChange(ctx context.Context, id string, c Change) error {
	want := ""
	switch c.Action {
	case Deploy, Start:
		want = "running"
	case Stop:
		want = "stopped"
	case Delete:
		return a.awaitDeleted(ctx, id)
	default:
		return fmt.Errorf("integration %s: cannot wait for action %q", id, c.Action)
	}
	// The runners' report cannot tell a start or stop from the state before
	// it (the version it is about can lag), so wait for the change's own
	// entry in the log.
	for {
		if e, ok := a.transitionAfter(ctx, id, string(c.Action), c.logMark); ok {
			if deref(e.ToStatus) == want {
				return nil
			}
			err := fmt.Errorf("integration %s: %s ended %s, not %s", id, c.Action, deref(e.ToStatus), want)
			if r, _ := a.GetIntegrationStatusWithResponse(ctx, id); r != nil && r.JSON200 != nil && deref(r.JSON200.LastError) != "" {
				err = fmt.Errorf("%w: %s", err, deref(r.JSON200.LastError))
			}
			return err
		}
		if sleep(ctx) != nil {
			return fmt.Errorf("integration %s: %s not carried out in time: are a worker and a runner running?", id, c.Action)
		}
	}
}

// transitionAfter returns the oldest execution log entry of action newer
// than mark, if it is among the newest few.
func (a *API) transitionAfter(ctx context.Context, id, action string, mark int64) (IntegrationEvent, bool) {
	events, err := a.RecentLogs(ctx, id, 10)
	if err != nil {
		return IntegrationEvent{}, false
	}
	for _, e := range slices.Backward(events) {
		if e.Id > mark && e.Action == action {
			return e, true
		}
	}
	return IntegrationEvent{}, false
}

// awaitDeleted polls integration id until the API no longer knows it.
func (a *API) awaitDeleted(ctx context.Context, id string) error {
	for {
		r, err := a.GetIntegrationWithResponse(ctx, id)
		if err == nil && r.StatusCode() == http.StatusNotFound {
			return nil
		}
		if sleep(ctx) != nil {
			return fmt.Errorf("integration %s was not deleted in time: is a worker running?", id)
		}
	}
}

// sleep waits one PollInterval, or returns ctx's error when it ends first.
func sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(PollInterval):
		return nil
	}
}
