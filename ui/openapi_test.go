package ui_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
)

var update = flag.Bool("update", false, "rewrite ui/openapi.json from the API's code")

// snapshotPath is the OpenAPI document the UI's client is generated from.
const snapshotPath = "openapi.json"

// apiDocument builds the API with every operation registered (their
// dependencies are never called while registering) and returns its OpenAPI
// document as served at /openapi.json.
func apiDocument(t *testing.T) []byte {
	t.Helper()
	st := store.New(nil)
	srv := api.New(api.Options{
		Version: "dev", Auth: st, Store: st, Accounts: dataplane.SharedAccount{},
		AdminKeyHash: store.HashSecret("unused"),
	})
	srv.RegisterWebhooks(&api.Webhooks{})
	doc, err := json.MarshalIndent(srv.API().OpenAPI(), "", "  ")
	require.NoError(t, err)
	return append(doc, '\n')
}

// TestOpenAPISnapshotIsCurrent fails when ui/openapi.json, from which the
// UI's client types are generated, differs from what the API serves. Run
// `go test ./ui -run OpenAPI -update` and then `npm run gen` in ui/.
func TestOpenAPISnapshotIsCurrent(t *testing.T) {
	doc := apiDocument(t)
	if *update {
		require.NoError(t, os.WriteFile(snapshotPath, doc, 0o644))
	}
	snapshot, err := os.ReadFile(snapshotPath)
	require.NoError(t, err)
	require.JSONEq(t, string(doc), string(snapshot),
		"ui/openapi.json is stale: run `go test ./ui -run OpenAPI -update` and `npm run gen` in ui/")
}
