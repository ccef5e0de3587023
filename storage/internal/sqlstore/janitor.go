package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// minJanitorBatch is the smallest janitor statement under
// Dialect.JanitorStatement: rows to delete, pages to give back.
const minJanitorBatch = 8

// janitorBatch is the size of the janitor's next statement (rows to
// delete, or pages to give back), adapted to Dialect.JanitorStatement.
type janitorBatch struct {
	size, min, max int
	budget         time.Duration // 0: always max
}

// newJanitorBatch starts at hi, or at lo when statements are timed
// (Dialect.JanitorStatement): the first statement of a round holds the
// writer briefly however slow the database is.
func (s *Store) newJanitorBatch(lo, hi int) *janitorBatch {
	b := &janitorBatch{size: hi, min: lo, max: hi, budget: s.d.JanitorStatement}
	if b.budget > 0 {
		b.size = lo
	}
	return b
}

// adapt sizes the next statement after one of b.size that took took:
// half after one over the budget, twice after one under half of it.
func (b *janitorBatch) adapt(took time.Duration) {
	switch {
	case b.budget <= 0:
	case took > b.budget:
		b.size = max(b.min, b.size/2)
	case took < b.budget/2:
		b.size = min(b.max, b.size*2)
	}
}

// janitorPause is what the janitor does between two statements: the
// dialect's checkpoint on a reader (Dialect.JanitorCheckpoint), then pace.
func (s *Store) janitorPause(ctx context.Context, took time.Duration) error {
	if s.d.JanitorCheckpoint != "" {
		var busy, log, done int64
		if err := s.queryRow(ctx, s.d.JanitorCheckpoint, nil, &busy, &log, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return pace(ctx, took)
}

// deleteExpired deletes table's rows that expired before cutoff (micros)
// in paced batches until one deletes fewer than its size, and returns how
// many went: with Dialect.JanitorPrefetch read first on a reader and
// sized by batch, else deleteBatch rows at a time by key.
func (s *Store) deleteExpired(ctx context.Context, table, key string, cutoff int64, batch *janitorBatch) (int64, error) {
	op := "delete expired " + table
	if !s.d.JanitorPrefetch {
		query := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE expires_at < ? LIMIT %[3]d)", table, key, deleteBatch)
		return s.deleteBatches(ctx, op, query, cutoff)
	}
	cols, err := s.indexColumns(ctx, table)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	pick := "SELECT rowid"
	for _, c := range cols {
		pick += ", " + c
	}
	pick += " FROM " + table + " WHERE expires_at < ? LIMIT ?"
	touch := make([]string, len(cols))
	for i, c := range cols {
		touch[i] = "SELECT count(*) FROM " + table + " WHERE " + c + " IN (SELECT value FROM json_each(?))"
	}
	del := "DELETE FROM " + table + " WHERE rowid IN (SELECT value FROM json_each(?)) AND expires_at < ?"
	var total int64
	for {
		size := batch.size
		round := time.Now()
		ids, values, err := s.pickExpired(ctx, pick, len(cols), cutoff, size)
		if err != nil || ids == "" {
			return total, s.wrap(op, err)
		}
		for i, q := range touch {
			var n int64
			if err := s.queryRow(ctx, q, []any{values[i]}, &n); err != nil {
				return total, s.wrap(op, err)
			}
		}
		start := time.Now()
		n, err := s.execN(ctx, del, ids, cutoff)
		if err != nil {
			return total, s.wrap(op, err)
		}
		took := time.Since(start)
		total += n
		if n < int64(size) {
			// The last batch, or rows that changed since they were
			// picked: either way the next round sees the rest.
			return total, nil
		}
		batch.adapt(took)
		// Paced by the whole batch, reads included: with a database
		// larger than memory they are the janitor's share of the disk.
		if err := s.janitorPause(ctx, time.Since(round)); err != nil {
			return total, s.wrap(op, err)
		}
	}
}

// indexColumns returns the first column of each of table's indexes but
// expires_at's (SQLite's pragma_index_list), read once per table.
func (s *Store) indexColumns(ctx context.Context, table string) ([]string, error) {
	if v, ok := s.janitorIndexes.Load(table); ok {
		return v.([]string), nil
	}
	var cols []string
	err := s.query(ctx, "SELECT ii.name FROM pragma_index_list(?) il JOIN pragma_index_info(il.name) ii WHERE ii.seqno = 0 AND ii.name <> 'expires_at' ORDER BY il.name", []any{table}, func(rows *sql.Rows) error {
		var c string
		if err := rows.Scan(&c); err != nil {
			return err
		}
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.janitorIndexes.Store(table, cols)
	return cols, nil
}

// pickExpired runs pick on a reader and returns the rowids of the rows it
// found and, per indexed column, their values, each as a JSON array; ids
// is empty when it found none.
func (s *Store) pickExpired(ctx context.Context, pick string, ncols int, cutoff int64, size int) (ids string, values []string, err error) {
	var rowids []int64
	cols := make([][]any, ncols)
	err = s.query(ctx, pick, []any{cutoff, size}, func(rows *sql.Rows) error {
		var id int64
		vals := make([]any, ncols)
		dest := []any{&id}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		rowids = append(rowids, id)
		for i, v := range vals {
			cols[i] = append(cols[i], v)
		}
		return nil
	})
	if err != nil || len(rowids) == 0 {
		return "", nil, err
	}
	b, err := json.Marshal(rowids)
	if err != nil {
		return "", nil, err
	}
	values = make([]string, ncols)
	for i, c := range cols {
		v, err := json.Marshal(c)
		if err != nil {
			return "", nil, err
		}
		values[i] = string(v)
	}
	return string(b), values, nil
}
