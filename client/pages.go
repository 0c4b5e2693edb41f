package client

import (
	"context"
	"fmt"
	"net/http"
)

// MaxPageSize is the largest page the API's collections answer.
const MaxPageSize = 100

// page is one page of a collection: its items and the cursor of the next.
type page[T any] struct {
	items []T
	next  string
}

// collect reads a paginated collection page by page, pageSize items a
// page, following the cursors until the last page or until it holds limit
// items (0: no limit).
func collect[T any](ctx context.Context, limit, pageSize int, fetch func(ctx context.Context, cursor *string, size int64) (page[T], error)) ([]T, error) {
	all := []T{}
	var cursor *string
	for {
		size := pageSize
		if left := limit - len(all); limit > 0 && left < size {
			size = left
		}
		p, err := fetch(ctx, cursor, int64(size))
		if err != nil {
			return nil, err
		}
		all = append(all, p.items...)
		if p.next == "" || (limit > 0 && len(all) >= limit) {
			return all, nil
		}
		cursor = &p.next
	}
}

// AllIntegrations returns every integration of the key's tenant, ordered by
// ID, following the pages to the last; status, when set, keeps only those
// in that status.
func (a *API) AllIntegrations(ctx context.Context, status string) ([]Integration, error) {
	return collect(ctx, 0, MaxPageSize, func(ctx context.Context, cursor *string, size int64) (page[Integration], error) {
		params := &ListIntegrationsParams{Cursor: cursor, Limit: &size}
		if status != "" {
			params.Status = Ptr(ListIntegrationsParamsStatus(status))
		}
		r, err := a.ListIntegrationsWithResponse(ctx, params)
		if err := Check("list integrations", r, err, http.StatusOK); err != nil {
			return page[Integration]{}, err
		}
		return page[Integration]{items: deref(r.JSON200.Items), next: deref(r.JSON200.Next)}, nil
	})
}

// RecentLogs returns the newest limit entries (at least 1) of integration
// id's execution log, newest first, following the pages as far as needed.
// The log outlives a deleted integration.
func (a *API) RecentLogs(ctx context.Context, id string, limit int) ([]IntegrationEvent, error) {
	what := "list logs of integration " + id
	if limit < 1 {
		return nil, fmt.Errorf("%s: limit %d is not positive", what, limit)
	}
	return collect(ctx, limit, MaxPageSize, func(ctx context.Context, cursor *string, size int64) (page[IntegrationEvent], error) {
		r, err := a.ListIntegrationLogsWithResponse(ctx, id, &ListIntegrationLogsParams{Cursor: cursor, Limit: &size})
		if err := Check(what, r, err, http.StatusOK); err != nil {
			return page[IntegrationEvent]{}, err
		}
		return page[IntegrationEvent]{items: deref(r.JSON200.Items), next: deref(r.JSON200.Next)}, nil
	})
}
