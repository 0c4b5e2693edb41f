package client

// client.gen.go is generated from the API's OpenAPI document as the repo
// keeps it (ui/openapi.json, refreshed by `go test ./ui -run OpenAPI
// -update`), with the changes in overlay.yaml. After the API changes,
// regenerate it with `go generate ./client`; TestGeneratedCodeIsCurrent
// fails until then. The generator's version is pinned by the tool directive
// in go.mod.
//go:generate go tool oapi-codegen -config oapi-codegen.yaml -o client.gen.go ../ui/openapi.json
