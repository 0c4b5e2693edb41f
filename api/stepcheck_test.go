package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// specWithSteps is a webhook-to-file spec with these steps (JSON).
func specWithSteps(name string, steps ...string) string {
	return fmt.Sprintf(`{"name":%q,"consumer":{"connector":"http-webhook"},"steps":[%s],`+
		`"producers":{"out":{"connector":"file","config":{"dir":"out","format":"ndjson"}},"big":{"connector":"file","config":{"dir":"big","format":"ndjson"}}}}`,
		name, strings.Join(steps, ","))
}

func transformSet(expr string) string {
	b, _ := json.Marshal(map[string]any{"connector": "json-transform", "config": map[string]any{"set": map[string]string{"total": expr}}})
	return string(b)
}

func routeWhen(expr string) string {
	b, _ := json.Marshal(map[string]any{"connector": "router", "config": map[string]any{
		"routes": []map[string]any{{"when": expr, "to": []string{"big"}}}, "default": []string{"out"}}})
	return string(b)
}

// A step whose expression does not compile is refused when the spec is
// written, located at its config, instead of failing when it is deployed.
func TestStepsThatDoNotBuildAreRefusedWithTheirLocation(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Control = nil })
	key, _ := activeTenant(t, e.st, "acme")

	good := specWithSteps("orders", transformSet("sum(map(items, #.qty * #.price))"), routeWhen("total > 1000"))
	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, good)
	require.Equal(t, http.StatusCreated, res.code, res.raw)

	for name, tc := range map[string]struct {
		steps []string
		bad   []int // the steps located in the 422
	}{
		"unclosed call":        {[]string{transformSet("sum(")}, []int{0}},
		"dangling operator":    {[]string{transformSet("1 +"), routeWhen("total > 1000")}, []int{0}},
		"router not a boolean": {[]string{transformSet("1"), routeWhen("1 + 2")}, []int{1}},
		"both":                 {[]string{transformSet("items[[["), routeWhen("}{")}, []int{0, 1}},
		"oversize expression":  {[]string{transformSet(strings.Repeat("1+", 3000) + "1")}, []int{0}},
		"control characters":   {[]string{transformSet("total\x00 > 1")}, []int{0}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, op := range []struct{ method, path string }{
				{http.MethodPost, "/v1/integrations"},
				{http.MethodPut, "/v1/integrations/orders"},
			} {
				name := "orders"
				if op.method == http.MethodPost {
					name = "fresh"
				}
				res := call(t, e.h, op.method, op.path, key, specWithSteps(name, tc.steps...))
				requireProblem(t, res, http.StatusUnprocessableEntity)
				var locations []string
				for _, d := range res.body["errors"].([]any) {
					locations = append(locations, d.(map[string]any)["location"].(string))
				}
				var want []string
				for _, i := range tc.bad {
					want = append(want, fmt.Sprintf("body.steps[%d].config", i))
				}
				require.ElementsMatch(t, want, locations, "%s %s: %s", op.method, op.path, res.raw)
			}
		})
	}

	// Nothing refused was stored: the integration is still at version 1,
	// and the refused create made none.
	res = call(t, e.h, http.MethodGet, "/v1/integrations/orders", key, "")
	require.Equal(t, http.StatusOK, res.code)
	require.EqualValues(t, 1, res.body["version"])
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/fresh", key, ""), http.StatusNotFound)
}
