package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/store"
)

// ConnectorInfo describes one connector of the catalog: what it does, the
// JSON Schema of its config (the UI renders its form from it) and an
// example config.
type ConnectorInfo struct {
	Name         string          `json:"name" doc:"The name a spec uses in connector."`
	Kind         string          `json:"kind" enum:"consumer,converter,filter,producer" doc:"Where it goes in a spec: the consumer, a step (converter or filter) or a producer."`
	Description  string          `json:"description" doc:"What it does, in one line."`
	ConfigSchema map[string]any  `json:"schema" doc:"The JSON Schema (draft 2020-12) of its config."`
	Example      json.RawMessage `json:"example" doc:"A config that passes its checks, or null."`
}

// ListConnectorsOutput is the catalog, sorted by kind then name.
type ListConnectorsOutput struct {
	Body struct {
		Items []ConnectorInfo `json:"items"`
	}
}

// ConnectorPath names a connector.
type ConnectorPath struct {
	Name string `path:"name" maxLength:"63" doc:"The connector's name."`
}

// ConnectorOutput is one connector; a name used by two kinds (file is a
// consumer and a producer) answers the first by kind.
type ConnectorOutput struct {
	Body ConnectorInfo
}

// kindOrder sorts kinds the way a spec reads: consumer, steps, producers.
var kindOrder = map[sdk.Kind]int{sdk.KindConsumer: 0, sdk.KindConverter: 1, sdk.KindFilter: 2, sdk.KindProducer: 3}

// connectorCatalog lists the catalog's connectors, each with its schema,
// sorted by kind then name; it is computed once.
func connectorCatalog() ([]ConnectorInfo, error) {
	all := connectors.Catalog().All()
	out := make([]ConnectorInfo, 0, len(all))
	for _, c := range all {
		raw, err := sdk.ConfigSchema(c)
		if err != nil {
			return nil, err
		}
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			return nil, fmt.Errorf("connector %s: schema: %w", c.Name, err)
		}
		out = append(out, ConnectorInfo{Name: c.Name, Kind: string(c.Kind), Description: c.Summary, ConfigSchema: schema, Example: c.Example})
	}
	slices.SortFunc(out, func(a, b ConnectorInfo) int {
		if d := kindOrder[sdk.Kind(a.Kind)] - kindOrder[sdk.Kind(b.Kind)]; d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// RegisterConnectors adds the read-only catalog of connectors: any valid
// key (a tenant's of any scope, or the platform admin's) may read it.
func RegisterConnectors(api huma.API) {
	catalog, err := connectorCatalog()
	if err != nil {
		// The schemas are generated from the connectors' config structs;
		// one that does not generate is a programming error that every
		// test of the API catches.
		panic(err)
	}
	h := &connectorsHandler{catalog: catalog}
	anyKey := requireScopes(store.ScopeRead, store.ScopeWrite, store.ScopeDLQ, store.ScopeAdmin, store.ScopePlatformAdmin)
	tags := []string{"Connectors"}

	huma.Register(api, huma.Operation{
		OperationID: "list-connectors",
		Method:      http.MethodGet,
		Path:        "/v1/connectors",
		Summary:     "List connectors",
		Description: "Lists every connector this platform runs, sorted by kind (consumer, converter, filter, producer) then name, " +
			"each with a one-line description, the JSON Schema of its config and an example config. A spec names a connector " +
			"by `name` in the role its `kind` says. Any valid key may call it.",
		Tags:     tags,
		Security: anyKey,
		Errors:   withAuthErrors(),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "get-connector",
		Method:      http.MethodGet,
		Path:        "/v1/connectors/{name}",
		Summary:     "Get a connector",
		Description: "Returns one connector as list-connectors does; 404 when there is none of that name. `file` is both a consumer " +
			"and a producer: this answers the consumer, and list-connectors shows both. Any valid key may call it.",
		Tags:     tags,
		Security: anyKey,
		Errors:   withAuthErrors(http.StatusNotFound),
	}, h.get)
}

// connectorsHandler serves the catalog, built once at registration.
type connectorsHandler struct {
	catalog []ConnectorInfo
}

func (h *connectorsHandler) list(ctx context.Context, _ *struct{}) (*ListConnectorsOutput, error) {
	out := &ListConnectorsOutput{}
	out.Body.Items = h.catalog
	return out, nil
}

func (h *connectorsHandler) get(ctx context.Context, in *ConnectorPath) (*ConnectorOutput, error) {
	for _, c := range h.catalog {
		if c.Name == in.Name {
			return &ConnectorOutput{Body: c}, nil
		}
	}
	return nil, huma.Error404NotFound("no connector named " + quoteName(in.Name))
}

// quoteName quotes a name from a request for a message, cut to a sane size.
func quoteName(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return fmt.Sprintf("%q", s)
}
