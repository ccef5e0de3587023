package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// RecordPushEvent implements storage.PushEventStore: one INSERT that does
// nothing on a duplicate key, so the unique key decides across replicas.
func (s *Store) RecordPushEvent(ctx context.Context, e storage.PushEvent, claimUntil time.Time) (bool, error) {
	n, err := s.execN(ctx, `INSERT INTO push_events (app_id, event_key, open_id, data, received_at, claimed_until, done, expires_at)
VALUES (?, ?, ?, ?, ?, ?, FALSE, ?) ON CONFLICT (app_id, event_key) DO NOTHING`,
		e.AppID, e.Key, e.OpenID, e.Data, micros(e.ReceivedAt), micros(claimUntil), micros(e.ExpiresAt))
	if err != nil {
		return false, s.wrap("record push event", err)
	}
	return n == 1, nil
}

// ClaimPushEvents implements storage.PushEventStore: it reads the due
// events, then claims each with a conditional UPDATE; an event another
// replica claimed in between is skipped.
func (s *Store) ClaimPushEvents(ctx context.Context, now, until time.Time, limit int) ([]storage.PushEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	var due []storage.PushEvent
	err := s.query(ctx, `SELECT app_id, event_key, open_id, data, received_at, expires_at FROM push_events
WHERE NOT done AND claimed_until <= ? AND expires_at > ? ORDER BY received_at, event_key LIMIT ?`,
		[]any{micros(now), micros(now), limit}, func(rows *sql.Rows) error {
			var e storage.PushEvent
			var recv, exp int64
			if err := rows.Scan(&e.AppID, &e.Key, &e.OpenID, &e.Data, &recv, &exp); err != nil {
				return err
			}
			e.ReceivedAt, e.ExpiresAt = fromMicros(recv), fromMicros(exp)
			due = append(due, e)
			return nil
		})
	if err != nil {
		return nil, s.wrap("claim push events", err)
	}
	out := due[:0]
	for _, e := range due {
		n, err := s.execN(ctx, "UPDATE push_events SET claimed_until = ? WHERE app_id = ? AND event_key = ? AND NOT done AND claimed_until <= ?",
			micros(until), e.AppID, e.Key, micros(now))
		if err != nil {
			return nil, s.wrap("claim push events", err)
		}
		if n == 1 {
			out = append(out, e)
		}
	}
	return out, nil
}

// FinishPushEvent implements storage.PushEventStore.
func (s *Store) FinishPushEvent(ctx context.Context, appID, key string) error {
	_, err := s.exec(ctx, "UPDATE push_events SET done = TRUE WHERE app_id = ? AND event_key = ?", appID, key)
	return s.wrap("finish push event", err)
}
