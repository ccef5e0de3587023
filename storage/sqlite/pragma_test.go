package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// testPools opens Open's connections to a database file in a temporary
// directory, closed at the end of t.
func testPools(t *testing.T) (w, r *sql.DB) {
	t.Helper()
	w, r, err := openPools(t.Context(), filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return w, r
}

// TestOpen_mmap shows mmap_size in effect on the writer and on every
// reader connection (SQLite clamps a value above its compile-time
// maximum, and modernc.org/sqlite could have been built without mmap:
// either would read back less).
func TestOpen_mmap(t *testing.T) {
	ctx := t.Context()
	w, r := testPools(t)
	check := func(name string, c *sql.Conn) {
		t.Helper()
		var got int64
		if err := c.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != mmapSize {
			t.Errorf("%s: mmap_size %d, want %d", name, got, mmapSize)
		}
	}
	c, err := w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", c)
	c.Close()
	// Hold every reader at once, so that each is a connection of its own.
	n := max(4, 2*runtime.GOMAXPROCS(0))
	for i := range n {
		c, err := r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(fmt.Sprint("reader ", i), c)
	}
	if got := r.Stats().OpenConnections; got != n {
		t.Errorf("%d reader connections, want %d", got, n)
	}
}

// TestOpen_writerCheckpoint: the writer checkpoints itself only at
// writerCheckpointPages and truncates a WAL grown beyond walSizeLimit.
func TestOpen_writerCheckpoint(t *testing.T) {
	ctx := t.Context()
	w, _ := testPools(t)
	for pragma, want := range map[string]int64{"wal_autocheckpoint": writerCheckpointPages, "journal_size_limit": walSizeLimit} {
		var got int64
		if err := w.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("writer's %s is %d, want %d", pragma, got, want)
		}
	}
}
