package sqlite_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// fileSize is the database's size on disk: the file and its WAL.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestJanitor_ShrinksTheFile: expired rows deleted by DeleteExpired (the
// janitor) give their pages back, so a burst of short-lived rows does not
// leave the file at its largest size forever.
func TestJanitor_ShrinksTheFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wxoidc.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	blob := bytes.Repeat([]byte("x"), 16<<10)
	for i := range 500 {
		if err := s.CreateLoginState(ctx, fmt.Sprint("state-", i), blob, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint(t, path)
	full := fileSize(t, path)
	if n, err := s.DeleteExpired(ctx, now.Add(time.Hour)); err != nil || n != 500 {
		t.Fatalf("DeleteExpired: %d rows, %v", n, err)
	}
	checkpoint(t, path)
	if after := fileSize(t, path); after > full/4 {
		t.Fatalf("the file is %d bytes after deleting %d of its %d: the space was not given back", after, 500*len(blob), full)
	}
}

// TestOpen_EnablesIncrementalVacuumOnExistingFile: a database created
// before wxoidc set incremental auto-vacuum is switched over (one VACUUM)
// and keeps its data.
func TestOpen_EnablesIncrementalVacuumOnExistingFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec("CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('kept')"); err != nil {
		t.Fatal(err)
	}
	var mode int
	old.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	old.Close()
	if mode != 0 {
		t.Fatalf("a plain new database has auto_vacuum %d, want 0 (none) for this test to mean anything", mode)
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("auto_vacuum %d (%v), want 2 (incremental)", mode, err)
	}
	if err := db.QueryRow("SELECT v FROM keep").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("data after the switch: %q, %v", v, err)
	}
}

// checkpoint moves the WAL into the database file and truncates it, so the
// sizes compare pages in use.
func checkpoint(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}
