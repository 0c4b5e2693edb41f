// Package examples holds the example integration specs, embedded so that
// `vrsky demo` deploys exactly the files a user reads.
package examples

import "embed"

// FS holds every example's integration.yaml, as <n>-<name>/integration.yaml.
//
//go:embed */integration.yaml
var FS embed.FS
