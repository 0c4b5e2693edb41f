// Package dbmigrate applies VRSky's embedded schema migrations (package
// migrations) to a PostgreSQL database with golang-migrate.
//
// It only moves the schema between the versions the binary carries; it never
// writes or reads application data and never creates or drops databases.
package dbmigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx/v5" database/sql driver

	"github.com/vrsky/vrsky/migrations"
)

// Up applies every migration not applied yet. A database that is already
// at the latest version is not an error.
func Up(ctx context.Context, databaseURL string) error {
	err := run(ctx, databaseURL, (*migrate.Migrate).Up)
	if err != nil {
		return fmt.Errorf("migrate %s up: %w", redact(databaseURL), err)
	}
	return nil
}

// Down reverts every applied migration, leaving no VRSky table behind
// (golang-migrate's own bookkeeping table stays, at no version).
func Down(ctx context.Context, databaseURL string) error {
	err := run(ctx, databaseURL, (*migrate.Migrate).Down)
	if err != nil {
		return fmt.Errorf("migrate %s down: %w", redact(databaseURL), err)
	}
	return nil
}

// Version returns the schema version of the database and whether a
// migration failed halfway there (dirty). A database that has seen no
// migration yet is at version 0, not dirty.
func Version(ctx context.Context, databaseURL string) (version uint, dirty bool, err error) {
	err = withMigrate(ctx, databaseURL, func(m *migrate.Migrate) error {
		version, dirty, err = m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			version, dirty, err = 0, false, nil
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("read schema version of %s: %w", redact(databaseURL), err)
	}
	return version, dirty, nil
}

// run performs one migrate operation; "no change" is success.
func run(ctx context.Context, databaseURL string, op func(*migrate.Migrate) error) error {
	return withMigrate(ctx, databaseURL, func(m *migrate.Migrate) error {
		// golang-migrate takes no context: ask it to stop between two
		// migrations when ctx ends.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-ctx.Done():
				m.GracefulStop <- true
			case <-done:
			}
		}()
		err := op(m)
		if errors.Is(err, migrate.ErrNoChange) {
			err = nil
		}
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("stopped: %w", ctx.Err())
		}
		return err
	})
}

// withMigrate connects to the database and calls f with a Migrate reading
// the embedded migrations.
func withMigrate(ctx context.Context, databaseURL string, f func(*migrate.Migrate) error) error {
	connURL, err := connectionURL(databaseURL)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx/v5", connURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	// Connect here, with ctx: golang-migrate's own connect takes none.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect: %w", err)
	}
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		db.Close()
		return fmt.Errorf("prepare migration table: %w", err)
	}
	source, err := iofs.New(migrations.FS, ".")
	if err != nil {
		driver.Close()
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	if err != nil {
		source.Close()
		driver.Close()
		return err
	}
	defer m.Close()
	return f(m)
}

// connectionURL checks that databaseURL is a PostgreSQL URL and returns it
// in the form pgx understands. The pgx5:// scheme golang-migrate's CLI uses
// is accepted too.
func connectionURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
	case "pgx5", "pgx":
		u.Scheme = "postgres"
	default:
		return "", fmt.Errorf("database URL: want a postgres:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return "", errors.New("database URL: no host")
	}
	return u.String(), nil
}

// redact hides the password of a database URL for error messages.
func redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}
