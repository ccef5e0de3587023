package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// openMigrated opens a migrated database file in a temporary directory,
// closed at the end of t.
func openMigrated(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckpointer_copiesInTheBackground: commits that stay far below the
// writer's own checkpoint threshold (TestOpen_writerCheckpoint) still reach
// the database file, which in WAL mode only a checkpoint writes, within a
// moment and without another write.
func TestCheckpointer_copiesInTheBackground(t *testing.T) {
	ctx := t.Context()
	s := openMigrated(t)
	path := s.ckpt.path
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Let the background copy the migrations, then write about 2 MB:
	// some 600 pages, a sixteenth of the writer's threshold.
	time.Sleep(3 * checkpointBusy)
	before := size()
	name := strings.Repeat("名", 1000)
	for i := range 600 {
		u := storage.User{Subject: fmt.Sprintf("%032x", i), Name: name, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+2<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes, %d before 2 MB of commits: nothing checkpointed them", size(), before)
		}
		time.Sleep(checkpointBusy)
	}
}

// TestCheckpointer_quietWAL: a few commits, far fewer pages than start a
// checkpoint, are copied into the database file once the WAL has been
// quiet for checkpointIdle.
func TestCheckpointer_quietWAL(t *testing.T) {
	ctx := t.Context()
	s := openMigrated(t)
	for i := range 3 {
		if err := s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("%032x", i), CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	look := &checkpointer{path: s.ckpt.path}
	defer func() {
		if look.shm != nil {
			look.shm.Close()
		}
	}()
	ix, ok := look.index()
	if !ok || ix.frames == 0 || ix.frames-ix.backfilled >= checkpointPages {
		t.Fatalf("WAL index %+v (read: %t) after a few commits", ix, ok)
	}
	deadline := time.Now().Add(5*checkpointIdle + 5*time.Second)
	for ix.backfilled != ix.frames {
		if time.Now().After(deadline) {
			t.Fatalf("WAL index %+v: the quiet WAL was not checkpointed", ix)
		}
		time.Sleep(50 * time.Millisecond)
		ix, _ = look.index()
	}
}

// TestCheckpointer_Close: Close stops the background checkpoints, closes
// their connection, and can be called again.
func TestCheckpointer_Close(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.ckpt
	if c == nil {
		t.Fatal("no checkpointer on a database file")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	default:
		t.Fatal("the checkpoints go on after Close")
	}
	if err := c.db.PingContext(ctx); err == nil {
		t.Error("the checkpoint connection is still open")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	m, err := Open(ctx, MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.ckpt != nil {
		t.Error("an in-memory database has a checkpointer")
	}
}
