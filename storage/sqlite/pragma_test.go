package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// TestOpen_mmap shows mmap_size in effect on the writer and on every
// reader connection (SQLite clamps a value above its compile-time
// maximum, and modernc.org/sqlite could have been built without mmap:
// either would read back less).
func TestOpen_mmap(t *testing.T) {
	ctx := t.Context()
	w, r, err := openPools(ctx, filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
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
