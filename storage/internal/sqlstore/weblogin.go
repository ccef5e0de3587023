package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// webLoginTables are the web-login tables DeleteExpired cleans, with their
// key column.
var webLoginTables = [][2]string{{"login_states", "id_hash"}, {"browser_sessions", "id_hash"}}

const (
	createLoginState  = "INSERT INTO login_states (id_hash, data, expires_at) VALUES (?, ?, ?)"
	consumeLoginState = "DELETE FROM login_states WHERE id_hash = ? RETURNING data, expires_at"

	insertBrowserSession = "INSERT INTO browser_sessions (id_hash, subject, auth_time, expires_at, amr) VALUES (?, ?, ?, ?, ?)"
)

// CreateLoginState implements storage.LoginStateStore (asynchronously
// committed where the dialect can; see asyncQueries).
func (s *Store) CreateLoginState(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	query := s.async(ctx, createLoginState, s.asyncQ.createLoginState)
	_, err := s.exec(ctx, query, hash(id), data, micros(expiresAt))
	return s.wrap("create login state", err)
}

// ConsumeLoginState implements storage.LoginStateStore with one DELETE …
// RETURNING: only the caller whose DELETE removed the row gets its data, so
// single use holds across replicas, in one round trip. An expired row is
// deleted too, and not found. It commits asynchronously where the dialect
// can (see asyncQueries): a lost delete after a database crash leaves a
// state whose WeChat code WeChat has already spent.
func (s *Store) ConsumeLoginState(ctx context.Context, id string) ([]byte, error) {
	var (
		data []byte
		exp  int64
	)
	query := s.async(ctx, consumeLoginState, s.asyncQ.consumeLoginState)
	err := s.writeReturning(ctx, query, []any{hash(id)}, &data, &exp)
	if err != nil {
		return nil, s.wrap("consume login state", err)
	}
	if exp <= micros(s.now()) {
		return nil, fmt.Errorf("%s: consume login state: %w", s.d.Name, storage.ErrNotFound)
	}
	return data, nil
}

// AdmitLoginState implements storage.LoginStateStore. Where the dialect
// has WritableCTE it is one statement, asynchronously committed where the
// dialect can (see asyncQueries): each limit's conditional upsert
// (takeRate) in a common table expression that runs only if the one
// before it admitted, and the login state's INSERT only if the last one
// did. Elsewhere it is TakeRate and CreateLoginState in one transaction.
func (s *Store) AdmitLoginState(ctx context.Context, id string, data []byte, expiresAt time.Time, limits []storage.RateTake, now time.Time) (bool, error) {
	const op = "admit login state"
	t := now.UnixMicro()
	args := make([]any, 0, 6*len(limits)+3)
	for i, l := range limits {
		cost, tolerance, ok := storage.RateCost(1, l.Rate, l.Burst)
		if !ok {
			// Never admitted (a cap of 0): the limits before it are
			// taken, as one by one.
			for _, l := range limits[:i] {
				if ok, err := s.TakeRate(ctx, l.Name, 1, l.Rate, l.Burst, now); err != nil || !ok {
					return false, err
				}
			}
			return false, nil
		}
		args = append(args, l.Name, t+cost, cost, cost, cost, t+tolerance)
	}
	if !s.d.WritableCTE {
		ok := false
		err := s.inTx(ctx, op, false, func(ctx context.Context) error {
			for _, l := range limits {
				if ok, err := s.TakeRate(ctx, l.Name, 1, l.Rate, l.Burst, now); err != nil || !ok {
					return err // a refusal commits the limits taken before it
				}
			}
			ok = true
			return s.CreateLoginState(ctx, id, data, expiresAt)
		})
		if err != nil {
			return false, err
		}
		return ok, nil
	}
	if len(limits) == 0 {
		return true, s.CreateLoginState(ctx, id, data, expiresAt)
	}
	args = append(args, hash(id), data, micros(expiresAt))
	n, err := s.execN(ctx, s.admitQuery(ctx, len(limits)), args...)
	if err != nil {
		return false, s.wrap(op, err)
	}
	return n == 1, nil
}

// admitQuery is AdmitLoginState's statement for k > 0 limits (see there).
func (s *Store) admitQuery(ctx context.Context, k int) string {
	async := s.d.AsyncCommitFrom != "" && s.state(ctx) == nil
	var b strings.Builder
	for i := range k {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "r%d AS (INSERT INTO rate_limits (name, expires_at) SELECT CAST(? AS TEXT), CAST(? AS BIGINT)", i)
		switch {
		case i > 0:
			fmt.Fprintf(&b, " WHERE EXISTS (SELECT 1 FROM r%d)", i-1)
		case async:
			b.WriteString(" FROM " + s.d.AsyncCommitFrom)
		}
		b.WriteString(takeRateConflict + " RETURNING 1)")
	}
	fmt.Fprintf(&b, "\nINSERT INTO login_states (id_hash, data, expires_at) SELECT CAST(? AS TEXT), CAST(? AS BYTEA), CAST(? AS BIGINT) WHERE EXISTS (SELECT 1 FROM r%d)", k-1)
	return b.String()
}

// advanceLoginState is AdvanceLoginState in one statement (WritableCTE):
// the DELETE … RETURNING of ConsumeLoginState and an INSERT of what it
// returned, changed, if it has not expired.
const advanceLoginState = `WITH consumed AS (DELETE FROM login_states%s WHERE id_hash = ? RETURNING data, expires_at),
advanced AS (INSERT INTO login_states (id_hash, data, expires_at) SELECT CAST(? AS TEXT), substring(data FROM 1 FOR GREATEST(length(data) - 1, 0)) || CAST(? AS BYTEA), CAST(? AS BIGINT) FROM consumed WHERE expires_at > ?)
SELECT data, expires_at FROM consumed`

// AdvanceLoginState implements storage.LoginStateStore: one statement
// where the dialect has WritableCTE (asynchronously committed where it
// can, see asyncQueries), else ConsumeLoginState and CreateLoginState in
// one transaction.
func (s *Store) AdvanceLoginState(ctx context.Context, id, newID string, tail []byte, expiresAt time.Time) ([]byte, error) {
	const op = "advance login state"
	if !s.d.WritableCTE {
		var data []byte
		err := s.inTx(ctx, op, false, func(ctx context.Context) error {
			var err error
			if data, err = s.ConsumeLoginState(ctx, id); err != nil {
				return err
			}
			next := append(data[:max(len(data)-1, 0):max(len(data)-1, 0)], tail...)
			return s.CreateLoginState(ctx, newID, next, expiresAt)
		})
		if err != nil {
			return nil, err
		}
		return data, nil
	}
	using := ""
	if s.d.AsyncCommitFrom != "" && s.state(ctx) == nil {
		using = " USING " + s.d.AsyncCommitFrom
	}
	var (
		data []byte
		exp  int64
	)
	now := micros(s.now())
	err := s.writeReturning(ctx, fmt.Sprintf(advanceLoginState, using), []any{hash(id), hash(newID), tail, micros(expiresAt), now}, &data, &exp)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if exp <= now {
		return nil, fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
	}
	return data, nil
}

// CreateBrowserSession implements storage.BrowserSessionStore. In a write
// set it is queued (it commits with the login it belongs to).
func (s *Store) CreateBrowserSession(ctx context.Context, bs storage.BrowserSession) error {
	return s.write(ctx, "create browser session", nil, insertBrowserSession,
		hash(bs.ID), bs.Subject, micros(bs.AuthTime), micros(bs.ExpiresAt), strings.Join(bs.AMR, " "))
}

// BrowserSession implements storage.BrowserSessionStore.
func (s *Store) BrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	bs := storage.BrowserSession{ID: id}
	var auth, exp int64
	var amr string
	err := s.queryRow(ctx, "SELECT subject, auth_time, expires_at, amr FROM browser_sessions WHERE id_hash = ? AND expires_at > ?",
		[]any{hash(id), micros(s.now())}, &bs.Subject, &auth, &exp, &amr)
	if err != nil {
		return storage.BrowserSession{}, s.wrap("browser session", err)
	}
	bs.AuthTime, bs.ExpiresAt, bs.AMR = fromMicros(auth), fromMicros(exp), strings.Fields(amr)
	return bs, nil
}

// browserSessionUser reads a session and its user in one round trip.
var browserSessionUser = "SELECT b.auth_time, b.expires_at, b.amr, " + prefixed("u.", userColumns) +
	" FROM browser_sessions b JOIN users u ON u.subject = b.subject WHERE b.id_hash = ? AND b.expires_at > ?"

// BrowserSessionUser implements storage.BrowserSessionStore.
func (s *Store) BrowserSessionUser(ctx context.Context, id string) (storage.BrowserSession, storage.User, error) {
	var (
		auth, exp int64
		amr       string
		r         userRow
	)
	err := s.queryRow(ctx, browserSessionUser, []any{hash(id), micros(s.now())}, append([]any{&auth, &exp, &amr}, r.dest()...)...)
	if err != nil {
		return storage.BrowserSession{}, storage.User{}, s.wrap("browser session user", err)
	}
	u := r.user()
	return storage.BrowserSession{ID: id, Subject: u.Subject, AuthTime: fromMicros(auth), ExpiresAt: fromMicros(exp), AMR: strings.Fields(amr)}, u, nil
}

// UserBrowserSessions implements storage.BrowserSessionStore.
func (s *Store) UserBrowserSessions(ctx context.Context, subject string) ([]storage.BrowserSession, error) {
	var out []storage.BrowserSession
	err := s.query(ctx, "SELECT auth_time, expires_at FROM browser_sessions WHERE subject = ? AND expires_at > ? ORDER BY auth_time",
		[]any{subject, micros(s.now())}, func(rows *sql.Rows) error {
			var auth, exp int64
			if err := rows.Scan(&auth, &exp); err != nil {
				return err
			}
			out = append(out, storage.BrowserSession{Subject: subject, AuthTime: fromMicros(auth), ExpiresAt: fromMicros(exp)})
			return nil
		})
	if err != nil {
		return nil, s.wrap("user browser sessions", err)
	}
	return out, nil
}

// DeleteBrowserSession implements storage.BrowserSessionStore.
func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "DELETE FROM browser_sessions WHERE id_hash = ?", hash(id))
	return s.wrap("delete browser session", err)
}

// Consent implements storage.ConsentStore.
func (s *Store) Consent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	c := storage.Consent{Subject: subject, ClientID: clientID}
	var scopes string
	var granted int64
	err := s.queryRow(ctx, "SELECT scopes, granted_at FROM consents WHERE subject = ? AND client_id = ?",
		[]any{subject, clientID}, &scopes, &granted)
	if err != nil {
		return storage.Consent{}, s.wrap(fmt.Sprintf("consent of %q to %q", subject, clientID), err)
	}
	c.Scopes, c.GrantedAt = strings.Fields(scopes), fromMicros(granted)
	return c, nil
}

// Consents implements storage.ConsentStore.
func (s *Store) Consents(ctx context.Context, subject string) ([]storage.Consent, error) {
	var out []storage.Consent
	err := s.query(ctx, "SELECT client_id, scopes, granted_at FROM consents WHERE subject = ? ORDER BY client_id", []any{subject},
		func(rows *sql.Rows) error {
			c := storage.Consent{Subject: subject}
			var scopes string
			var granted int64
			if err := rows.Scan(&c.ClientID, &scopes, &granted); err != nil {
				return err
			}
			c.Scopes, c.GrantedAt = strings.Fields(scopes), fromMicros(granted)
			out = append(out, c)
			return nil
		})
	if err != nil {
		return nil, s.wrap("consents", err)
	}
	return out, nil
}

// PutConsent implements storage.ConsentStore with one upsert.
func (s *Store) PutConsent(ctx context.Context, c storage.Consent) error {
	_, err := s.exec(ctx, `INSERT INTO consents (subject, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.Subject, c.ClientID, strings.Join(c.Scopes, " "), micros(c.GrantedAt))
	return s.wrap("put consent", err)
}

// DeleteConsent implements storage.ConsentStore.
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	// Withdrawal is rare: the token tables are scanned by subject rather
	// than given another index on the token endpoint's write path.
	return s.inTx(ctx, "delete consent", false, func(ctx context.Context) error {
		for _, q := range []string{
			"DELETE FROM consents WHERE subject = ? AND client_id = ?",
			"DELETE FROM oauth2_access WHERE subject = ? AND client_id = ?",
			"UPDATE oauth2_refresh SET active = FALSE WHERE subject = ? AND client_id = ? AND active",
			"UPDATE oauth2_code SET active = FALSE WHERE subject = ? AND client_id = ? AND active",
		} {
			if _, err := s.exec(ctx, q, subject, clientID); err != nil {
				return s.wrap("delete consent", err)
			}
		}
		return nil
	})
}
