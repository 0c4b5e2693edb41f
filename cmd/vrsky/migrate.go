package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vrsky/vrsky/internal/dbmigrate"
)

const migrateUsage = `Usage: vrsky migrate up|down|version

Manages the metadata schema of the PostgreSQL database at VRSKY_DATABASE_URL:
  up       apply every migration not applied yet
  down     undo every migration
  version  print the schema version
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (isHelpArg(args[0]) || args[0] == "help") {
		fmt.Fprint(stdout, migrateUsage)
		return flag.ErrHelp
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, migrateUsage)
		return fmt.Errorf("%w: vrsky migrate up|down|version", errUsage)
	}
	url := os.Getenv("VRSKY_DATABASE_URL")
	if url == "" {
		return fmt.Errorf("%w: VRSKY_DATABASE_URL is not set", errUsage)
	}
	switch args[0] {
	case "up":
		if err := dbmigrate.Up(ctx, url); err != nil {
			return err
		}
	case "down":
		if err := dbmigrate.Down(ctx, url); err != nil {
			return err
		}
	case "version":
	default:
		return fmt.Errorf("%w: unknown migrate action %q (want up, down or version)", errUsage, args[0])
	}
	v, dirty, err := dbmigrate.Version(ctx, url)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d", v)
	if dirty {
		fmt.Fprint(stdout, " (dirty: a migration failed halfway; fix it and force the version)")
	}
	fmt.Fprintln(stdout)
	return nil
}
