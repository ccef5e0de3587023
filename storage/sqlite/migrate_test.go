package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
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

// TestErasureLeavesNothing dumps every table after an erasure.
func TestErasureLeavesNothing(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conformance.TestErasureLeavesNothing(t, s, func() (string, error) {
		return dumpTables(db, "SELECT name FROM sqlite_master WHERE type = 'table'")
	})
}

// dumpTables returns every row of the tables listQuery names, as text.
func dumpTables(db *sql.DB, listQuery string) (string, error) {
	var tables []string
	rows, err := db.Query(listQuery)
	if err != nil {
		return "", err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", err
		}
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			return "", err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", err
			}
			fmt.Fprintf(&b, "%s:", table)
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, " %v", v)
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String(), nil
}
