package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"
)

// Checkpoints. In WAL mode a commit appends the pages it changed to the
// WAL file, and a checkpoint copies them back into the database file and
// syncs it. By default SQLite runs that checkpoint in the committing
// connection once the WAL holds 1,000 pages: every few dozen Mini Program
// grants, one waits for the copy and two fsyncs while the single writer,
// and so every other write, waits behind it. Open instead checkpoints on
// a connection of its own, in the background, at the same 1,000 pages (a
// PASSIVE checkpoint, which waits for no reader or writer), and lets the
// writer checkpoint only when the WAL reaches writerCheckpointPages. By
// then the background has copied all but the last thousand pages, and the
// writer's pass, which SQLite needs before it starts the WAL over from its
// beginning, copies only those. docs/scale.md "Checkpoints in the
// background" has the figures.

// writerCheckpointPages is the writer's wal_autocheckpoint: the size, in
// pages, at which the writer checkpoints itself (40 MB with 4 KB pages).
// It also bounds the WAL, as SQLite's default of 1,000 would, if the
// background checkpoints cannot keep up or fail.
const writerCheckpointPages = 10000

// walSizeLimit is the journal_size_limit: a WAL file that grew beyond it
// (a long read kept SQLite from starting the WAL over) is truncated to it
// when SQLite next starts over, instead of keeping its largest size.
const walSizeLimit = 64 << 20

// checkpointPages is how many pages of the WAL, not yet in the database
// file, start a background checkpoint: SQLite's default for its own.
const checkpointPages = 1000

// checkpointBusy and checkpointIdle are the pauses between two looks at
// the WAL: checkpointBusy while it grows, doubling up to checkpointIdle
// while it does not, so that an idle server reads 100 bytes of a file
// about once a second. A WAL quiet for checkpointIdle is checkpointed
// whatever its length.
const (
	checkpointBusy = 10 * time.Millisecond
	checkpointIdle = time.Second
)

// checkpointer runs background checkpoints of one database file.
type checkpointer struct {
	path   string   // of the database file
	shm    *os.File // its WAL index, opened at run's first look
	db     *sql.DB
	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
	err    error // of closing db
}

// startCheckpointer opens a connection of its own to path (which must be
// in WAL mode already) and checkpoints on it until stopped.
func startCheckpointer(path string) (*checkpointer, error) {
	q := url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS)}}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{path: path, db: db, stop: stop, done: make(chan struct{})}
	go c.run(ctx)
	return c, nil
}

// run checkpoints until ctx ends: when the WAL holds checkpointPages
// pages not yet in the database file, as SQLite's own checkpoint would,
// or holds any and has been quiet for checkpointIdle. It reads the WAL's
// length from the WAL index (walIndex) every pause, checkpointBusy while
// it grows and doubling up to checkpointIdle while it does not. A
// checkpoint that fails (another process's checkpoint holds the lock, a
// disk error) is tried again at the next look: the writer's own
// checkpoint remains in any case.
func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	pause := checkpointBusy
	t := time.NewTimer(pause)
	defer t.Stop()
	var last walIndex
	changed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		ix, ok := c.index()
		if ix != last {
			pause, changed = checkpointBusy, now
		} else {
			pause = min(2*pause, checkpointIdle)
		}
		last = ix
		left := int64(ix.frames) - int64(ix.backfilled)
		if !ok || left >= checkpointPages || (left > 0 && now.Sub(changed) >= checkpointIdle) {
			var busy, log, done int64
			_ = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done)
		}
		t.Reset(pause)
	}
}

// walIndex is what the checkpointer reads of the WAL index (the -shm
// file; sqlite.org/walformat.html, "The WAL-Index Header"): the frames the
// WAL holds (mxFrame) and how many are in the database file (nBackfill).
type walIndex struct{ frames, backfilled uint32 }

// index reads the WAL index, or reports !ok if it cannot (no file yet, an
// unknown version), in which case run checkpoints anyway.
func (c *checkpointer) index() (walIndex, bool) {
	var b [100]byte
	if c.shm == nil {
		f, err := os.Open(c.path + "-shm")
		if err != nil {
			return walIndex{}, false
		}
		c.shm = f
	}
	if _, err := c.shm.ReadAt(b[:], 0); err != nil {
		return walIndex{}, false
	}
	// In the host's byte order: the version, then mxFrame at 16 of the
	// first of two header copies (48 bytes each), nBackfill at 96. Read
	// without SQLite's locks, it may be torn by a commit: that only
	// starts or skips one checkpoint.
	const walIndexVersion = 3007000
	if binary.NativeEndian.Uint32(b[0:]) != walIndexVersion {
		return walIndex{}, false
	}
	return walIndex{binary.NativeEndian.Uint32(b[16:]), binary.NativeEndian.Uint32(b[96:])}, true
}

// Close stops the checkpoints and closes the connection. It is safe to
// call more than once.
func (c *checkpointer) Close() error {
	c.closed.Do(func() {
		c.stop()
		<-c.done
		if c.shm != nil {
			c.shm.Close()
		}
		c.err = c.db.Close()
	})
	return c.err
}
