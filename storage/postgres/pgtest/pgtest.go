// Package pgtest gives a test or benchmark a PostgreSQL schema of its own on
// the server that WXOIDC_TEST_POSTGRES_DSN names, and skips it visibly
// when that is unset.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN is the environment variable that holds the test server's DSN.
const EnvDSN = "WXOIDC_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN, or skips tb saying that what (e.g.
// "the PostgreSQL benchmark") is skipped.
func DSN(tb testing.TB, what string) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		tb.Skipf("%s not set: skipping %s", EnvDSN, what)
	}
	return dsn
}

// SearchPath returns dsn with its search_path set to schema.
func SearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // not a URL: postgres.Open says what is wrong with it
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Schema creates a schema named prefix and random hex digits on the test
// server (so that parallel tests and concurrent runs never share tables),
// drops it when tb ends, and returns a DSN whose search_path is that
// schema. It skips tb, saying that what is skipped, when the server is not
// configured.
func Schema(tb testing.TB, prefix, what string) string {
	tb.Helper()
	base := DSN(tb, what)
	if u, err := url.Parse(base); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL", EnvDSN)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.ExecContext(tb.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		// Cleanups run after the test's context is cancelled.
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return SearchPath(base, schema)
}
