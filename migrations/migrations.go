// Package migrations holds VRSky's PostgreSQL schema as numbered SQL files
// for golang-migrate, embedded in the binary. Each version is an up/down
// pair (NNNN_name.up.sql, NNNN_name.down.sql). A migration that has landed
// must never be edited: change the schema with a new, higher-numbered pair.
// This package only carries the files; internal/dbmigrate applies them.
package migrations

import "embed"

// FS holds every migration file, at the root of the file system.
//
//go:embed *.sql
var FS embed.FS
