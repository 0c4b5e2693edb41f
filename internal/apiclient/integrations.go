package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/vrsky/vrsky/internal/spec"
)

// maxPageSize is the largest page the API's collections answer.
const maxPageSize = 100

// StatusError is an answer of the API other than 2xx: its status and its
// body, an RFC 9457 problem. Its message is Problem's.
type StatusError struct {
	Status int
	Body   []byte
}

func (e *StatusError) Error() string { return Problem(e.Status, e.Body) }

// isNotFound reports whether err is the API answering 404.
func isNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

// Integration is an integration with its latest spec.
type Integration struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Version         int              `json:"version"`
	DeployedVersion int              `json:"deployed_version"` // 0 before the first deploy
	DesiredStatus   string           `json:"desired_status"`
	Status          string           `json:"status"`
	LastError       string           `json:"last_error,omitempty"`
	Spec            spec.Integration `json:"spec"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

// IntegrationStatus is what the lifecycle recorded about an integration and
// what its runners report now.
type IntegrationStatus struct {
	ID            string        `json:"id"`
	Status        string        `json:"status"`
	DesiredStatus string        `json:"desired_status"`
	Version       int           `json:"version"` // the deployed version
	LatestVersion int           `json:"latest_version"`
	LastError     string        `json:"last_error,omitempty"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Runner        *RunnerStatus `json:"runner,omitempty"` // nil until a runner reported
	Stages        []StageCount  `json:"stages,omitempty"`
	DeadLetters   uint64        `json:"dead_letters"`
}

// RunnerStatus is the runners' last report about an integration.
type RunnerStatus struct {
	Runner    string    `json:"runner"`
	Version   int       `json:"version"`
	Status    string    `json:"status"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StageCount is one stage's message counters.
type StageCount struct {
	Stage       string `json:"stage"`
	Acked       uint64 `json:"acked"`
	Pending     uint64 `json:"pending"`
	InFlight    int    `json:"in_flight"`
	Redelivered int    `json:"redelivered"`
}

// IntegrationEvent is one entry of an integration's execution log.
type IntegrationEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	FromStatus string    `json:"from_status,omitempty"`
	ToStatus   string    `json:"to_status,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// IntegrationVersion is one stored version of an integration's spec.
type IntegrationVersion struct {
	Version   int              `json:"version"`
	Spec      spec.Integration `json:"spec"`
	CreatedAt time.Time        `json:"created_at"`
	CreatedBy string           `json:"created_by,omitempty"`
}

// ChangeAccepted is a lifecycle change the integration's workflow accepted;
// it is carried out in the background (see AwaitChange).
type ChangeAccepted struct {
	WorkflowID string `json:"workflow_id"`
	UpdateID   string `json:"update_id"`
	Action     string `json:"action"`
	// Version is the version the change is about, as recorded when it was
	// accepted: for start and stop it can lag behind a deploy still being
	// carried out.
	Version int `json:"version"`

	// logMark is the newest entry of the execution log before the change
	// was asked for; the change's own entry comes after it.
	logMark int64
}

// ListIntegrations returns every integration of the key's tenant, ordered by
// ID, following the pages to the last; status, when set, keeps only those in
// that status. The JSON is the items as the API sent them, as
// {"items":[…]}.
func (c *Client) ListIntegrations(ctx context.Context, status string) ([]Integration, json.RawMessage, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	return collect[Integration](ctx, c, "list integrations", "/v1/integrations", q, 0, maxPageSize)
}

// GetIntegration returns integration id with its latest spec, and the API's
// JSON of it.
func (c *Client) GetIntegration(ctx context.Context, id string) (Integration, json.RawMessage, error) {
	var it Integration
	raw, err := c.call(ctx, "get integration "+id, http.MethodGet, integrationPath(id), nil, &it)
	return it, raw, err
}

// IntegrationStatus returns integration id's recorded state, its runners'
// live report and its stage counters, and the API's JSON of them.
func (c *Client) IntegrationStatus(ctx context.Context, id string) (IntegrationStatus, json.RawMessage, error) {
	var st IntegrationStatus
	raw, err := c.call(ctx, "get status of integration "+id, http.MethodGet, integrationPath(id)+"/status", nil, &st)
	return st, raw, err
}

// IntegrationLogs returns the newest limit entries (at least 1) of
// integration id's execution log, newest first, following the pages as far
// as needed. The log outlives a deleted integration. The JSON is the entries
// as the API sent them, as {"items":[…]}.
func (c *Client) IntegrationLogs(ctx context.Context, id string, limit int) ([]IntegrationEvent, json.RawMessage, error) {
	if limit < 1 {
		return nil, nil, fmt.Errorf("list logs of integration %s: limit %d is not positive", id, limit)
	}
	return collect[IntegrationEvent](ctx, c, "list logs of integration "+id, integrationPath(id)+"/logs", url.Values{}, limit, maxPageSize)
}

// IntegrationVersions returns every version of integration id's spec,
// newest first, and the API's JSON of them.
func (c *Client) IntegrationVersions(ctx context.Context, id string) ([]IntegrationVersion, json.RawMessage, error) {
	var page struct {
		Items []IntegrationVersion `json:"items"`
	}
	raw, err := c.call(ctx, "list versions of integration "+id, http.MethodGet, integrationPath(id)+"/versions", nil, &page)
	return page.Items, raw, err
}

// ChangeIntegration asks integration id's lifecycle for a change — deploy
// (the latest version), start, stop or delete — recording reason in its
// execution log. It returns as soon as the change is accepted, with the
// API's JSON of it; AwaitChange waits for its outcome.
func (c *Client) ChangeIntegration(ctx context.Context, id, action, reason string) (ChangeAccepted, json.RawMessage, error) {
	what := action + " integration " + id
	method, path := http.MethodPost, integrationPath(id)+"/"+action
	switch action {
	case "deploy", "start", "stop":
	case "delete":
		method, path = http.MethodDelete, integrationPath(id)
	default:
		return ChangeAccepted{}, nil, fmt.Errorf("%s: unknown action", what)
	}
	// The change's own entry in the execution log comes after the newest
	// one now. An integration without a log is the request's own 404.
	var mark int64
	events, _, err := c.IntegrationLogs(ctx, id, 1)
	switch {
	case err == nil && len(events) > 0:
		mark = events[0].ID
	case err != nil && !isNotFound(err):
		return ChangeAccepted{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	var body []byte
	if method == http.MethodPost {
		body, _ = json.Marshal(map[string]string{"reason": reason})
	}
	var accepted ChangeAccepted
	raw, err := c.call(ctx, what, method, path, body, &accepted)
	accepted.logMark = mark
	return accepted, raw, err
}

// AwaitChange waits until a change that ChangeIntegration had accepted for
// integration id is carried out: the integration is gone (delete), or the
// lifecycle recorded the change in the execution log once the runners
// reported the outcome — running (deploy, start) or stopped (stop). Any
// other outcome is an error with the reason recorded; so is ctx ending
// first.
func (c *Client) AwaitChange(ctx context.Context, id string, accepted ChangeAccepted) error {
	want := ""
	switch accepted.Action {
	case "deploy", "start":
		want = "running"
	case "stop":
		want = "stopped"
	case "delete":
		return c.awaitDeleted(ctx, id)
	default:
		return fmt.Errorf("integration %s: cannot wait for action %q", id, accepted.Action)
	}
	// The runners' report cannot tell a start or stop from the state before
	// it (the version it is about can lag), so wait for the change's own
	// entry in the log.
	for {
		if e, ok := c.transitionAfter(ctx, id, accepted.Action, accepted.logMark); ok {
			if e.ToStatus == want {
				return nil
			}
			err := fmt.Errorf("integration %s: %s ended %s, not %s", id, accepted.Action, e.ToStatus, want)
			if st, _, _ := c.IntegrationStatus(ctx, id); st.LastError != "" {
				err = fmt.Errorf("%w: %s", err, st.LastError)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("integration %s: %s not carried out in time: are a worker and a runner running?", id, accepted.Action)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transitionAfter returns the oldest execution log entry of action newer
// than mark, if it is among the newest few.
func (c *Client) transitionAfter(ctx context.Context, id, action string, mark int64) (IntegrationEvent, bool) {
	events, _, err := c.IntegrationLogs(ctx, id, 10)
	if err != nil {
		return IntegrationEvent{}, false
	}
	for _, e := range slices.Backward(events) {
		if e.ID > mark && e.Action == action {
			return e, true
		}
	}
	return IntegrationEvent{}, false
}

// awaitDeleted polls integration id until the API no longer knows it.
func (c *Client) awaitDeleted(ctx context.Context, id string) error {
	for {
		_, _, err := c.GetIntegration(ctx, id)
		if isNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("integration %s was not deleted in time: is a worker running?", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// call sends a request, with body as JSON when not nil, and returns the 2xx
// answer's JSON, decoded into out when not nil. Any other status is a
// *StatusError; what says what was being done.
func (c *Client) call(ctx context.Context, what, method, path string, body []byte, out any) (json.RawMessage, error) {
	contentType := ""
	if body != nil {
		contentType = "application/json"
	}
	st, raw, err := c.Do(ctx, method, path, contentType, body, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if st/100 != 2 {
		return nil, fmt.Errorf("%s: %w", what, &StatusError{Status: st, Body: raw})
	}
	return raw, nil
}

// collect reads a paginated collection at path with query, pageSize items a
// page, following the next cursors until the last page or until it holds
// limit items (0: no limit). It returns the items decoded and, as the API
// sent them, as {"items":[…]}.
func collect[T any](ctx context.Context, c *Client, what, path string, query url.Values, limit, pageSize int) ([]T, json.RawMessage, error) {
	all := struct {
		Items []json.RawMessage `json:"items"`
	}{Items: []json.RawMessage{}}
	for {
		size := pageSize
		if left := limit - len(all.Items); limit > 0 && left < size {
			size = left
		}
		query.Set("limit", strconv.Itoa(size))
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if _, err := c.call(ctx, what, http.MethodGet, path+"?"+query.Encode(), nil, &page); err != nil {
			return nil, nil, err
		}
		all.Items = append(all.Items, page.Items...)
		if page.Next == "" || (limit > 0 && len(all.Items) >= limit) {
			break
		}
		query.Set("cursor", page.Next)
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	var items struct {
		Items []T `json:"items"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, fmt.Errorf("%s: decode answer: %w", what, err)
	}
	return items.Items, raw, nil
}

func integrationPath(id string) string { return "/v1/integrations/" + url.PathEscape(id) }
