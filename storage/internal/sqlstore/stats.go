package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

var _ storage.Stats = (*Store)(nil)

// CountUsers implements storage.Stats: the sum of the counter the
// triggers of migration 00017 keep (16 rows on PostgreSQL, one on SQLite).
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := s.queryRow(ctx, "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM user_counts", nil, &n); err != nil {
		return 0, fmt.Errorf("%s: count users: %w", s.d.Name, err)
	}
	return n, nil
}

// usPerDay is a day in the events' and roll-ups' time unit (µs).
const usPerDay = int64(24 * time.Hour / time.Microsecond)

// watermark returns the end of the events rolled up (the zero time for
// none) and its stored form.
func (s *Store) watermark(ctx context.Context) (time.Time, int64, error) {
	var through int64
	if err := s.queryRow(ctx, "SELECT through FROM event_rollup WHERE id = 1", nil, &through); err != nil {
		return time.Time{}, 0, err
	}
	if through == 0 {
		return time.Time{}, 0, nil
	}
	return fromMicros(through), through, nil
}

// CountEvents implements storage.Stats: the daily roll-ups up to the
// watermark (a row per day, type and method: about 210 for 30 days of
// sign-ins by seven methods and new users, through the primary key), and
// a GROUP BY of the events after it (the unrolled tail: minutes) through
// the (type, time, id) index.
func (s *Store) CountEvents(ctx context.Context, types []string, since, until time.Time) ([]storage.EventCount, error) {
	if len(types) == 0 {
		return nil, nil
	}
	type key struct {
		day         int64
		typ, method string
	}
	counts := map[key]int64{}
	in := "?" + strings.Repeat(", ?", len(types)-1)
	// The watermark and the roll-ups in one statement, so in one snapshot:
	// read apart, a roll-up committed between them would add to the
	// watermark's day events that the tail counts again. The days from
	// since's to until's hold nothing past the watermark; the rolled span
	// ends at whichever comes first (storage.RollUpSpans).
	from, to := storage.DayOf(since), storage.DayOf(until)
	if from.Before(since) {
		from = from.AddDate(0, 0, 1)
	}
	args := []any{micros(from), micros(to)}
	for _, t := range types {
		args = append(args, t)
	}
	var through int64
	q := fmt.Sprintf("SELECT r.through, c.day / %d, c.type, c.method, c.n FROM event_rollup r LEFT JOIN event_counts c"+
		" ON c.day >= ? AND c.day < ? AND c.type IN (%s) WHERE r.id = 1", usPerDay, in)
	err := s.query(ctx, q, args, func(rows *sql.Rows) error {
		var (
			day         sql.NullInt64
			typ, method sql.NullString
			n           sql.NullInt64
		)
		if err := rows.Scan(&through, &day, &typ, &method, &n); err != nil {
			return err
		}
		if day.Valid {
			counts[key{day.Int64, typ.String, method.String}] += n.Int64
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
	}
	_, raw := storage.RollUpSpans(since, until, fromMicros(through))
	scan := func(rows *sql.Rows) error {
		var (
			k      key
			method sql.NullString
			n      int64
		)
		if err := rows.Scan(&k.day, &k.typ, &method, &n); err != nil {
			return err
		}
		k.method = method.String
		counts[k] += n
		return nil
	}
	q = fmt.Sprintf("SELECT time / %d, type, %s, COUNT(*) FROM events WHERE time >= ? AND time < ? AND type IN (%s) GROUP BY 1, 2, 3",
		usPerDay, s.d.EventMethod, in)
	for _, sp := range raw {
		args := []any{micros(sp[0]), micros(sp[1])}
		for _, t := range types {
			args = append(args, t)
		}
		if err := s.query(ctx, q, args, scan); err != nil {
			return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
		}
	}
	out := make([]storage.EventCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, storage.EventCount{Day: time.UnixMicro(k.day * usPerDay).UTC(), Type: k.typ, Method: k.method, Count: n})
	}
	return out, nil
}

// rollUpStep is how much of the trail one roll-up transaction counts.
const rollUpStep = 24 * time.Hour

// rollUpRows is how many roll-up rows one INSERT writes.
const rollUpRows = 250

// RollUpEvents implements storage.Stats. Each step counts up to a day of
// events on the reader (a range of the (time, id) index), then, in one
// short write transaction, moves the watermark from where the count
// started to where it ended (UPDATE … WHERE through = old: the
// compare-and-swap) and, only if that changed the row, adds the counts to
// the days' rows. A janitor that loses the race to another finds the row
// changed (on PostgreSQL after waiting for the winner's commit) and writes
// nothing. Steps are paced like the janitor's deletes.
func (s *Store) RollUpEvents(ctx context.Context, before time.Time) (time.Time, error) {
	const op = "roll up events"
	end := micros(before.UTC().Truncate(time.Minute))
	for {
		wm, old, err := s.watermark(ctx)
		if err != nil || old >= end {
			return wm, s.wrap(op, err)
		}
		started := time.Now()
		from := old
		if from == 0 { // the first roll-up: from the oldest event
			var oldest sql.NullInt64
			if err := s.queryRow(ctx, "SELECT MIN(time) FROM events", nil, &oldest); err != nil {
				return wm, s.wrap(op, err)
			}
			from = end
			if oldest.Valid && oldest.Int64 < end {
				from = oldest.Int64
			}
		}
		to := min(from+rollUpStep.Microseconds(), end)
		var rows []any // type, day, method, n
		q := fmt.Sprintf("SELECT type, time / %d, %s, COUNT(*) FROM events WHERE time >= ? AND time < ? GROUP BY 1, 2, 3", usPerDay, s.d.EventMethod)
		err = s.query(ctx, q, []any{from, to}, func(r *sql.Rows) error {
			var (
				typ    string
				day    int64
				method sql.NullString
				n      int64
			)
			if err := r.Scan(&typ, &day, &method, &n); err != nil {
				return err
			}
			rows = append(rows, typ, day*usPerDay, method.String, n)
			return nil
		})
		if err != nil {
			return wm, s.wrap(op, err)
		}
		won := false
		err = s.inTx(ctx, op, false, func(ctx context.Context) error {
			n, err := s.execN(ctx, "UPDATE event_rollup SET through = ? WHERE id = 1 AND through = ?", to, old)
			if err != nil || n == 0 {
				return s.wrap(op, err)
			}
			won = true
			for len(rows) > 0 {
				k := min(len(rows), 4*rollUpRows)
				ins := "INSERT INTO event_counts (type, day, method, n) VALUES (?, ?, ?, ?)" + strings.Repeat(", (?, ?, ?, ?)", k/4-1) +
					" ON CONFLICT (type, day, method) DO UPDATE SET n = event_counts.n + excluded.n"
				if _, err := s.exec(ctx, ins, rows[:k]...); err != nil {
					return s.wrap(op, err)
				}
				rows = rows[k:]
			}
			return nil
		})
		if err != nil {
			return wm, err
		}
		if !won { // another janitor is at it
			wm, _, err := s.watermark(ctx)
			return wm, s.wrap(op, err)
		}
		if to == end {
			return fromMicros(to), nil
		}
		if err := pace(ctx, time.Since(started)); err != nil {
			return fromMicros(to), s.wrap(op, err)
		}
	}
}
