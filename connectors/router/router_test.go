package router_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsonexpr"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	env := sdk.Env{Tenant: "t1", Integration: "orders"}
	sdktest.Conformance(t, router.Connector, env,
		json.RawMessage(`{"routes":[{"when":"n > 0","to":["archive"]}],"default":["dlq-file"]}`),
		map[string]json.RawMessage{
			"no routes":          json.RawMessage(`{}`),
			"empty when":         json.RawMessage(`{"routes":[{"when":"","to":["a"]}]}`),
			"no to":              json.RawMessage(`{"routes":[{"when":"true"}]}`),
			"bad producer name":  json.RawMessage(`{"routes":[{"when":"true","to":["Archive"]}]}`),
			"producer traversal": json.RawMessage(`{"routes":[{"when":"true","to":["../x"]}]}`),
			"long producer name": json.RawMessage(`{"routes":[{"when":"true","to":["` + strings.Repeat("a", 64) + `"]}]}`),
			"bad default name":   json.RawMessage(`{"routes":[{"when":"true","to":["a"]}],"default":["a b"]}`),
			"bad mode":           json.RawMessage(`{"routes":[{"when":"true","to":["a"]}],"mode":"any"}`),
			"bad expression":     json.RawMessage(`{"routes":[{"when":"n >","to":["a"]}]}`),
			"not boolean":        json.RawMessage(`{"routes":[{"when":"1 + 2","to":["a"]}]}`),
		})
	sdktest.Conformance(t, router.FilterConnector, env,
		json.RawMessage(`{"keep":"n > 0"}`),
		map[string]json.RawMessage{
			"empty keep":     json.RawMessage(`{}`),
			"bad expression": json.RawMessage(`{"keep":"n >"}`),
			"not boolean":    json.RawMessage(`{"keep":"'yes'"}`),
		})
}

func buildFilter(t *testing.T, c sdk.Connector, cfg string) sdk.Filter {
	t.Helper()
	inst, err := c.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
	require.NoError(t, err)
	return inst.(sdk.Filter)
}

func TestRouter(t *testing.T) {
	routes := `"routes":[
		{"when":"type == 'order' && (total ?? 0) > 100","to":["big-orders","audit"]},
		{"when":"type == 'order'","to":["orders"]},
		{"when":"customer?.vip ?? false","to":["vip","audit"]}]`
	tests := []struct {
		name string
		cfg  string
		body string
		want sdk.Decision
	}{
		{"first match wins", `{` + routes + `}`, `{"type":"order","total":500,"customer":{"vip":true}}`, sdk.Decision{Routes: []string{"big-orders", "audit"}}},
		{"second route", `{` + routes + `}`, `{"type":"order","total":5}`, sdk.Decision{Routes: []string{"orders"}}},
		{"nested field", `{` + routes + `}`, `{"type":"refund","customer":{"vip":true}}`, sdk.Decision{Routes: []string{"vip", "audit"}}},
		{"no match no default drops", `{` + routes + `}`, `{"type":"refund"}`, sdk.Decision{Drop: true}},
		{"no match goes to default", `{` + routes + `,"default":["rest"]}`, `{"type":"refund"}`, sdk.Decision{Routes: []string{"rest"}}},
		{"all: union without duplicates, in route order", `{` + routes + `,"mode":"all"}`, `{"type":"order","total":500,"customer":{"vip":true}}`, sdk.Decision{Routes: []string{"big-orders", "audit", "orders", "vip"}}},
		{"all: no match goes to default", `{` + routes + `,"mode":"all","default":["rest"]}`, `{}`, sdk.Decision{Routes: []string{"rest"}}},
		{"all: no match drops", `{` + routes + `,"mode":"all"}`, `{}`, sdk.Decision{Drop: true}},
		{"explicit first", `{` + routes + `,"mode":"first"}`, `{"type":"order"}`, sdk.Decision{Routes: []string{"orders"}}},
		{"odd keys via $env", `{"routes":[{"when":"$env['x-kind'] == 'a'","to":["a"]}]}`, `{"x-kind":"a"}`, sdk.Decision{Routes: []string{"a"}}},
		{"huge numbers compare as text", `{"routes":[{"when":"string(id) == '123456789012345678901234567890'","to":["a"]}]}`, `{"id":123456789012345678901234567890}`, sdk.Decision{Routes: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := buildFilter(t, router.Connector, tt.cfg)
			got, err := f.Filter(t.Context(), sdk.Message{Body: []byte(tt.body)})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestFiltersReadARecordedObjectWithoutChangingIt: after a JSON converter,
// the filters read the object it recorded instead of decoding the body, and
// their conditions leave that shared object as it was.
func TestFiltersReadARecordedObjectWithoutChangingIt(t *testing.T) {
	var msg sdk.Message
	require.NoError(t, jsonbody.SetObject(&msg, map[string]any{
		"items": []any{3, 1, 2}, "customer": map[string]any{"vip": true}, "total": 150.0,
	}))
	recorded, ok := msg.JSON()
	require.True(t, ok)
	want, err := jsonbody.Decode(msg.Body)
	require.NoError(t, err)

	f := buildFilter(t, router.Connector, `{"routes":[
		{"when":"sort(items)[0] == 1 && reverse(items)[0] == 2 && total % 2 == 0","to":["sorted"]}]}`)
	d, err := f.Filter(t.Context(), msg)
	require.NoError(t, err)
	require.Equal(t, sdk.Decision{Routes: []string{"sorted"}}, d)

	k := buildFilter(t, router.FilterConnector, `{"keep":"len(map(items, # * 2)) == 3 && customer.vip"}`)
	d, err = k.Filter(t.Context(), msg)
	require.NoError(t, err)
	require.Equal(t, sdk.Decision{}, d)

	require.Equal(t, want, recorded)
}

func TestRouterResultIsTheCallers(t *testing.T) {
	f := buildFilter(t, router.Connector, `{"routes":[{"when":"true","to":["a"]}]}`)
	d, err := f.Filter(t.Context(), sdk.Message{Body: []byte(`{}`)})
	require.NoError(t, err)
	d.Routes[0] = "changed"
	d, err = f.Filter(t.Context(), sdk.Message{Body: []byte(`{}`)})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, d.Routes)
}

func TestFilterErrors(t *testing.T) {
	tests := []struct {
		name string
		conn sdk.Connector
		cfg  string
		body string
		want []string
	}{
		{"malformed JSON", router.Connector, `{"routes":[{"when":"true","to":["a"]}]}`, "{\n \"a\": [1,,2]}", []string{"router", "malformed JSON", "line 2, column 10"}},
		{"not an object", router.Connector, `{"routes":[{"when":"true","to":["a"]}]}`, `"text"`, []string{"a string, want an object"}},
		{"too deep", router.Connector, `{"routes":[{"when":"true","to":["a"]}]}`, strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000), []string{"exceeded max depth"}},
		{"comparison on missing field", router.Connector, `{"routes":[{"when":"total > 100","to":["a"]}]}`, `{}`, []string{"routes[0]", "total > 100"}},
		{"type mismatch", router.Connector, `{"routes":[{"when":"true == false","to":["a"]},{"when":"total > 100","to":["a"]}]}`, `{"total":"lots"}`, []string{"routes[1]"}},
		{"not boolean at run time", router.Connector, `{"routes":[{"when":"flag","to":["a"]}]}`, `{"flag":"yes"}`, []string{"routes[0]"}},
		{"filter malformed", router.FilterConnector, `{"keep":"true"}`, `{"a":}`, []string{"filter", "line 1, column 6"}},
		{"filter not boolean", router.FilterConnector, `{"keep":"flag"}`, `{"flag":1}`, []string{"filter: keep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := buildFilter(t, tt.conn, tt.cfg)
			_, err := f.Filter(t.Context(), sdk.Message{Body: []byte(tt.body)})
			require.Error(t, err)
			require.True(t, sdk.IsPermanent(err), "must be permanent: %v", err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestKeepFilter(t *testing.T) {
	f := buildFilter(t, router.FilterConnector, `{"keep":"status != 'test' && (amount ?? 0) >= 10"}`)
	tests := []struct {
		body string
		want sdk.Decision
	}{
		{`{"status":"paid","amount":10}`, sdk.Decision{}},
		{`{"status":"paid","amount":9.5}`, sdk.Decision{Drop: true}},
		{`{"status":"test","amount":100}`, sdk.Decision{Drop: true}},
		{`{"status":"paid"}`, sdk.Decision{Drop: true}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, err := f.Filter(t.Context(), sdk.Message{Body: []byte(tt.body)})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestBuildErrorsNameTheRoute(t *testing.T) {
	_, err := router.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"routes":[{"when":"true","to":["a"]},{"when":"x ==","to":["b"]}]}`))
	require.ErrorContains(t, err, "routes[1].when")
	_, err = router.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"routes":[{"when":"","to":[]}],"mode":"x"}`))
	require.ErrorContains(t, err, "routes[0]: when is empty")
	require.ErrorContains(t, err, "routes[0]: to names no producer")
	require.ErrorContains(t, err, `mode "x"`)
}

// TestHostileConditionFailsOnlyItsMessage: a condition that would loop a
// billion times over a message's array fails that message permanently
// with the budget as the reason; a small message still routes.
func TestHostileConditionFailsOnlyItsMessage(t *testing.T) {
	inst, err := router.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"routes":[
		{"when":"sum(items, sum(items, sum(items, 1))) > 0","to":["big"]}],"default":["rest"]}`))
	require.NoError(t, err)
	f := inst.(sdk.Filter)
	items := "[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]"
	_, err = f.Filter(t.Context(), sdk.Message{ID: "bomb", Body: []byte(`{"items":` + items + `}`)})
	require.True(t, sdk.IsPermanent(err))
	require.ErrorIs(t, err, jsonexpr.ErrLimit)
	d, err := f.Filter(t.Context(), sdk.Message{ID: "fine", Body: []byte(`{"items":[1,2]}`)})
	require.NoError(t, err)
	require.Equal(t, []string{"big"}, d.Routes)
}
