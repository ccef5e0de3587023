package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// AddSessionClient implements storage.BackchannelStore with one upsert.
func (s *Store) AddSessionClient(ctx context.Context, sid, subject, clientID string, expiresAt time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO session_clients (id, sid, client_id, subject, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, expires_at = excluded.expires_at`,
		sid+"/"+clientID, sid, clientID, subject, micros(expiresAt))
	return s.wrap("add session client", err)
}

// EnqueueSessionLogouts implements storage.BackchannelStore: jobs are
// inserted from the session's records and the records deleted, in one
// transaction.
func (s *Store) EnqueueSessionLogouts(ctx context.Context, sid string, now, giveUp time.Time) (int, error) {
	return s.enqueueLogouts(ctx, "sid = ?", []any{sid}, now, giveUp)
}

// EnqueueSubjectLogouts implements storage.BackchannelStore.
func (s *Store) EnqueueSubjectLogouts(ctx context.Context, subject, clientID string, now, giveUp time.Time) (int, error) {
	if clientID == "" {
		return s.enqueueLogouts(ctx, "subject = ?", []any{subject}, now, giveUp)
	}
	return s.enqueueLogouts(ctx, "subject = ? AND client_id = ?", []any{subject, clientID}, now, giveUp)
}

func (s *Store) enqueueLogouts(ctx context.Context, where string, args []any, now, giveUp time.Time) (int, error) {
	const op = "enqueue logouts"
	var n int64
	batch := make([]byte, 8)
	rand.Read(batch)
	err := s.inTx(ctx, op, false, func(ctx context.Context) error {
		ins := append([]any{hex.EncodeToString(batch), micros(now), micros(giveUp)}, args...)
		var err error
		n, err = s.execN(ctx, `INSERT INTO logout_jobs (id, client_id, subject, sid, attempts, next_attempt, expires_at)
SELECT id || '/' || CAST(? AS TEXT), client_id, subject, sid, 0, CAST(? AS BIGINT), CAST(? AS BIGINT) FROM session_clients WHERE `+where, ins...)
		if err != nil {
			return s.wrap(op, err)
		}
		_, err = s.exec(ctx, "DELETE FROM session_clients WHERE "+where, args...)
		return s.wrap(op, err)
	})
	return int(n), err
}

// DueLogouts implements storage.BackchannelStore.
func (s *Store) DueLogouts(ctx context.Context, now time.Time, limit int) ([]storage.LogoutJob, error) {
	var out []storage.LogoutJob
	err := s.query(ctx, `SELECT id, client_id, subject, sid, attempts, next_attempt, expires_at FROM logout_jobs
WHERE next_attempt <= ? AND expires_at > ? ORDER BY next_attempt LIMIT ?`, []any{micros(now), micros(now), limit}, func(rows *sql.Rows) error {
		var j storage.LogoutJob
		var next, exp int64
		if err := rows.Scan(&j.ID, &j.ClientID, &j.Subject, &j.SID, &j.Attempts, &next, &exp); err != nil {
			return err
		}
		j.NextAttempt, j.ExpiresAt = fromMicros(next), fromMicros(exp)
		out = append(out, j)
		return nil
	})
	return out, s.wrap("due logouts", err)
}

// RescheduleLogout implements storage.BackchannelStore.
func (s *Store) RescheduleLogout(ctx context.Context, id string, attempts int, next time.Time) error {
	_, err := s.exec(ctx, "UPDATE logout_jobs SET attempts = ?, next_attempt = ? WHERE id = ?", attempts, micros(next), id)
	return s.wrap("reschedule logout", err)
}

// DeleteLogout implements storage.BackchannelStore.
func (s *Store) DeleteLogout(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "DELETE FROM logout_jobs WHERE id = ?", id)
	return s.wrap("delete logout", err)
}

// enqueueSubjectLogouts queues the back-channel logouts of every session
// of subject, in the context's transaction (the users' session-ending
// paths).
func (s *Store) enqueueSubjectLogouts(ctx context.Context, subject string) error {
	now := s.now()
	_, err := s.enqueueLogouts(ctx, "subject = ?", []any{subject}, now, now.Add(storage.LogoutRetryFor))
	return err
}
