package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// TestJanitor_PrefetchedBatches: on SQLite the janitor picks each batch
// on a reader, reads its index entries there, and deletes the rows by
// rowid on the writer in statements sized to a time budget (starting
// small), with a checkpoint on a reader after each. Every expired row of
// a table with several indexes goes, in more than one statement, and no
// live row does.
func TestJanitor_PrefetchedBatches(t *testing.T) {
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
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	const expired, live = 2500, 300
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range expired + live {
		exp := now.Add(-time.Minute - time.Duration(i)*time.Second)
		if i >= expired {
			exp = now.Add(time.Hour)
		}
		// Values repeat (request IDs, subjects) as they do in the token
		// tables.
		if _, err := tx.Exec("INSERT INTO oauth2_access (signature, request_id, client_id, subject, requested_at, expires_at, active, request) VALUES (?, ?, 'c', ?, ?, ?, TRUE, '{}')",
			fmt.Sprintf("sig-%05d", i), fmt.Sprintf("req-%d", i/2), fmt.Sprintf("user-%d", i%97), exp.Add(-time.Hour).UnixMicro(), exp.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	s.Observe(func(_ context.Context, op string) func(error) {
		return func(err error) {
			if err != nil {
				t.Errorf("%s: %v", op, err)
			}
			mu.Lock()
			seen[op]++
			mu.Unlock()
		}
	})
	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpired: %d rows, %v; want %d", n, err, expired)
	}
	var left, kept int
	if err := db.QueryRow("SELECT count(*), count(CASE WHEN expires_at > ? THEN 1 END) FROM oauth2_access", now.UnixMicro()).Scan(&left, &kept); err != nil {
		t.Fatal(err)
	}
	if left != live || kept != live {
		t.Fatalf("left %d rows (%d live), want the %d live ones", left, kept, live)
	}
	mu.Lock()
	if seen["delete oauth2_access"] < 2 {
		t.Errorf("%d delete statements for %d rows, want several small ones (round trips %v)", seen["delete oauth2_access"], expired, seen)
	}
	if seen["select oauth2_access"] <= seen["delete oauth2_access"] {
		t.Errorf("%d reads for %d deletes: the batches were not read first on a reader (round trips %v)", seen["select oauth2_access"], seen["delete oauth2_access"], seen)
	}
	mu.Unlock()
	if n, err := s.DeleteExpired(ctx, now); err != nil || n != 0 {
		t.Fatalf("DeleteExpired again: %d rows, %v; want none", n, err)
	}
}
