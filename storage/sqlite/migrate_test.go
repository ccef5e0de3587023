package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/wxoidc/wxoidc/storage/conformance"
)

// TestMigrateToUsers migrates a database built with the schema before
// users and accounts.
func TestMigrateToUsers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.MigrateUpTo(ctx, conformance.SchemaBeforeUsers); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) error { _, err := db.ExecContext(ctx, q); return err }
	conformance.TestMigrationToUsers(t, s, exec, func() error { return s.Migrate(ctx) })
}
