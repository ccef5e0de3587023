package sqlstore

import (
	"context"
	"crypto/rand"
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

// claimLogouts is ClaimLogouts in one statement. The outer condition on
// next_attempt is checked again on the row PostgreSQL finally updates (a
// concurrent claim that committed first has moved next_attempt into the
// future), so two claimers never both take a row; SQLite has one writer
// at a time anyway.
const claimLogouts = `UPDATE logout_jobs SET next_attempt = ?
WHERE id IN (SELECT id FROM logout_jobs WHERE next_attempt <= ? AND expires_at > ? ORDER BY next_attempt LIMIT ?)
AND next_attempt <= ? AND expires_at > ?
RETURNING id, client_id, subject, sid, attempts, next_attempt, expires_at`

// ClaimLogouts implements storage.BackchannelStore.
func (s *Store) ClaimLogouts(ctx context.Context, now, until time.Time, limit int) ([]storage.LogoutJob, error) {
	const op = "claim logouts"
	st, err := s.prepared(ctx, s.w, claimLogouts)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	n, u := micros(now), micros(until)
	done := s.tripQuery(ctx, claimLogouts)
	rows, err := st.QueryContext(ctx, u, n, n, limit, n, n)
	if err != nil {
		done(err)
		return nil, s.wrap(op, s.classify(err))
	}
	defer rows.Close()
	var out []storage.LogoutJob
	for rows.Next() {
		var j storage.LogoutJob
		var next, exp int64
		if err := rows.Scan(&j.ID, &j.ClientID, &j.Subject, &j.SID, &j.Attempts, &next, &exp); err != nil {
			done(nil)
			return nil, s.wrap(op, err)
		}
		j.NextAttempt, j.ExpiresAt = fromMicros(next), fromMicros(exp)
		out = append(out, j)
	}
	err = rows.Err()
	done(err)
	return out, s.wrap(op, s.classify(err))
}

// RescheduleLogout implements storage.BackchannelStore.
func (s *Store) RescheduleLogout(ctx context.Context, j storage.LogoutJob, attempts int, next time.Time) (bool, error) {
	n, err := s.execN(ctx, "UPDATE logout_jobs SET attempts = ?, next_attempt = ? WHERE id = ? AND next_attempt = ?",
		attempts, micros(next), j.ID, micros(j.NextAttempt))
	return n == 1, s.wrap("reschedule logout", err)
}

// DeleteLogout implements storage.BackchannelStore.
func (s *Store) DeleteLogout(ctx context.Context, j storage.LogoutJob) (bool, error) {
	n, err := s.execN(ctx, "DELETE FROM logout_jobs WHERE id = ? AND next_attempt = ?", j.ID, micros(j.NextAttempt))
	return n == 1, s.wrap("delete logout", err)
}

// enqueueSubjectLogouts queues the back-channel logouts of every session
// of subject, in the context's transaction (the users' session-ending
// paths).
func (s *Store) enqueueSubjectLogouts(ctx context.Context, subject string) error {
	now := s.now()
	_, err := s.enqueueLogouts(ctx, "subject = ?", []any{subject}, now, now.Add(storage.LogoutRetryFor))
	return err
}
