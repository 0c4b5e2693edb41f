package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIntegrationQuotaRefusesOneTooMany: a tenant created with a quota of
// one integration gets a clear 422 for the second, and GET shows the count.
func TestIntegrationQuotaRefusesOneTooMany(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	body := `{"id":"small","name":"Small","limits":{"disk_bytes":1073741824,"memory_bytes":0,"streams":10,"consumers":100,"integrations":1}}`
	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, body)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	key := res.body["api_key"].(map[string]any)["secret"].(string)
	e.waitForStore(t, "small", "active")

	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed("first", "a")).code)
	over := call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed("second", "b"))
	requireProblem(t, over, http.StatusUnprocessableEntity)
	require.Contains(t, over.body["detail"], "quota is 1")

	got := call(t, e.h, http.MethodGet, "/v1/tenants/small", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, float64(1), got.body["usage"].(map[string]any)["integrations"])
	require.NotContains(t, got.body["usage"], "stored_bytes", "no NATS accounts given to this API")
	require.Equal(t, float64(1), got.body["limits"].(map[string]any)["integrations"])
}
