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

// CountUsers implements storage.Stats.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.query(ctx, "SELECT COUNT(*) FROM users", nil, func(rows *sql.Rows) error { return rows.Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("%s: count users: %w", s.d.Name, err)
	}
	return n, nil
}

// usPerDay is a day in the events table's time unit (µs).
const usPerDay = int64(24 * time.Hour / time.Microsecond)

// CountEvents implements storage.Stats: one GROUP BY over the events of
// the types, through the (type, time) index.
func (s *Store) CountEvents(ctx context.Context, types []string, since, until time.Time) ([]storage.EventCount, error) {
	if len(types) == 0 {
		return nil, nil
	}
	args := []any{micros(since), micros(until)}
	marks := make([]string, len(types))
	for i, t := range types {
		marks[i] = "?"
		args = append(args, t)
	}
	q := fmt.Sprintf("SELECT time / %d, type, %s, COUNT(*) FROM events WHERE time >= ? AND time < ? AND type IN (%s) GROUP BY 1, 2, 3",
		usPerDay, s.d.EventMethod, strings.Join(marks, ", "))
	var out []storage.EventCount
	err := s.query(ctx, q, args, func(rows *sql.Rows) error {
		var day int64
		var c storage.EventCount
		var method sql.NullString
		if err := rows.Scan(&day, &c.Type, &method, &c.Count); err != nil {
			return err
		}
		c.Day, c.Method = time.UnixMicro(day*usPerDay).UTC(), method.String
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
	}
	return out, nil
}
