package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

const insertEvent = "INSERT INTO events (id, time, type, subject, client_id, ip, details) VALUES (?, ?, ?, ?, ?, ?, ?)"

// AppendEvents implements storage.EventStore. In a write set the inserts
// are queued with the change they record; otherwise several events are
// written in one transaction.
func (s *Store) AppendEvents(ctx context.Context, events ...storage.Event) error {
	if len(events) == 0 {
		return nil
	}
	if len(events) > 1 && s.state(ctx) == nil {
		return s.inTx(ctx, "append events", false, func(ctx context.Context) error { return s.AppendEvents(ctx, events...) })
	}
	now := s.now()
	for _, e := range events {
		e = storage.PrepareEvent(e, now)
		details, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("%s: append event %s: %w", s.d.Name, e.Type, err)
		}
		if err := s.write(ctx, "append event", nil, insertEvent, e.ID, micros(e.Time), e.Type, e.Subject, e.ClientID, e.IP, string(details)); err != nil {
			return err
		}
	}
	return nil
}

// Events implements storage.EventStore.
func (s *Store) Events(ctx context.Context, q storage.EventQuery) ([]storage.Event, string, error) {
	at, id, err := storage.ParseEventPageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	var (
		conds []string
		args  []any
	)
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if q.Subject != "" {
		add("subject = ?", q.Subject)
	}
	if q.ClientID != "" {
		// client_id <> '' lets the planner use the partial index
		// events_client_idx, with a generic plan too.
		add("client_id = ? AND client_id <> ''", q.ClientID)
	}
	if q.Type != "" {
		add("type = ?", q.Type)
	}
	if !q.Since.IsZero() {
		add("time >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("time < ?", micros(q.Until))
	}
	if id != "" {
		// (time, id) < (at, id), written so that time <= at bounds the
		// index range and only ties are filtered.
		add("time <= ? AND (time < ? OR id < ?)", micros(at), micros(at), id)
	}
	limit := storage.PageSize(q.Limit)
	query := "SELECT id, time, type, subject, client_id, ip, details FROM events"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY time DESC, id DESC LIMIT %d", limit+1)
	var out []storage.Event
	err = s.query(ctx, query, args, func(rows *sql.Rows) error {
		var (
			e       storage.Event
			t       int64
			details string
		)
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.Subject, &e.ClientID, &e.IP, &details); err != nil {
			return err
		}
		e.Time = fromMicros(t)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return fmt.Errorf("decode event %s: %w", e.ID, err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, "", s.wrap("events", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = storage.EventPageToken(last.Time, last.ID)
	}
	return out, next, nil
}

// DeleteEventsBefore implements storage.EventStore with batched deletes,
// like DeleteExpired, then deletes the roll-ups of the days that ended by
// before (a few rows a day: one statement).
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time) (int64, error) {
	query := fmt.Sprintf("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? LIMIT %d)", deleteBatch)
	n, err := s.deleteBatches(ctx, "delete old events", query, micros(before))
	if err != nil {
		return n, err
	}
	if _, err := s.exec(ctx, "DELETE FROM event_counts WHERE day < ?", micros(storage.DayOf(before))); err != nil {
		return n, s.wrap("delete old event roll-ups", err)
	}
	return n, nil
}
