package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wxoidc/wxoidc/storage"
)

const iatColumns = "id, token_hash, description, uses, uses_left, created_at, expires_at, last_used_at"

// iatRow holds the columns of an initial_access_tokens row (iatColumns).
type iatRow struct {
	t                      storage.InitialAccessToken
	created, expires, used int64
}

func (r *iatRow) dest() []any {
	return []any{&r.t.ID, &r.t.Hash, &r.t.Description, &r.t.Uses, &r.t.UsesLeft, &r.created, &r.expires, &r.used}
}

func (r *iatRow) token() storage.InitialAccessToken {
	t := r.t
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromMicros(r.created), fromMicros(r.expires), fromMicros(r.used)
	return t
}

// CreateInitialAccessToken implements storage.RegistrationStore.
func (s *Store) CreateInitialAccessToken(ctx context.Context, t storage.InitialAccessToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return fmt.Errorf("%s: create initial access token: empty ID or hash", s.d.Name)
	}
	_, err := s.exec(ctx, "INSERT INTO initial_access_tokens ("+iatColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Hash, t.Description, t.Uses, t.UsesLeft, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.LastUsedAt))
	return s.wrap(fmt.Sprintf("create initial access token %q", t.ID), err)
}

// InitialAccessTokens implements storage.RegistrationStore.
func (s *Store) InitialAccessTokens(ctx context.Context) ([]storage.InitialAccessToken, error) {
	out := []storage.InitialAccessToken{}
	err := s.query(ctx, "SELECT "+iatColumns+" FROM initial_access_tokens ORDER BY created_at DESC, id DESC", nil, func(rows *sql.Rows) error {
		var r iatRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.token())
		return nil
	})
	if err != nil {
		return nil, s.wrap("list initial access tokens", err)
	}
	return out, nil
}

// InitialAccessToken implements storage.RegistrationStore.
func (s *Store) InitialAccessToken(ctx context.Context, hash []byte) (storage.InitialAccessToken, error) {
	var r iatRow
	if err := s.queryRow(ctx, "SELECT "+iatColumns+" FROM initial_access_tokens WHERE token_hash = ?", []any{hash}, r.dest()...); err != nil {
		return storage.InitialAccessToken{}, s.wrap("initial access token", err)
	}
	return r.token(), nil
}

// DeleteInitialAccessToken implements storage.RegistrationStore.
func (s *Store) DeleteInitialAccessToken(ctx context.Context, id string) error {
	n, err := s.execN(ctx, "DELETE FROM initial_access_tokens WHERE id = ?", id)
	if err != nil {
		return s.wrap(fmt.Sprintf("delete initial access token %q", id), err)
	}
	if n == 0 {
		return fmt.Errorf("%s: delete initial access token %q: %w", s.d.Name, id, storage.ErrNotFound)
	}
	return nil
}

// RegisterClient implements storage.RegistrationStore in one transaction:
// a conditional UPDATE takes the use (the row lock serialises parallel
// registrations on PostgreSQL; SQLite has one writer), then the client and
// its registration are inserted.
func (s *Store) RegisterClient(ctx context.Context, r storage.Registration) error {
	cl := r.Client
	if cl.ID == "" {
		return fmt.Errorf("%s: register client: empty ID", s.d.Name)
	}
	if cl.CreatedAt.IsZero() {
		cl.CreatedAt = r.Now
	}
	if cl.UpdatedAt.IsZero() {
		cl.UpdatedAt = cl.CreatedAt
	}
	meta, err := encodeClient(cl)
	if err != nil {
		return fmt.Errorf("%s: register client %q: %w", s.d.Name, cl.ID, err)
	}
	op := fmt.Sprintf("register client %q", cl.ID)
	now := micros(r.Now)
	err = s.inTx(ctx, op, false, func(ctx context.Context) error {
		var id string
		if err := s.queryRow(ctx, "SELECT id FROM initial_access_tokens WHERE token_hash = ?", []any{r.InitialTokenHash}, &id); err != nil {
			return s.wrap(op+": initial access token", err)
		}
		n, err := s.execN(ctx, "UPDATE initial_access_tokens SET uses_left = uses_left - 1, last_used_at = ? WHERE id = ? AND uses_left > 0 AND expires_at > ?", now, id, now)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: initial access token used up or expired: %w", s.d.Name, op, storage.ErrNotFound)
		}
		if _, err := s.exec(ctx, "INSERT INTO clients ("+clientColumns+") VALUES (?, ?, ?, 1, ?, ?)",
			cl.ID, cl.SecretHash, meta, micros(cl.CreatedAt), micros(cl.UpdatedAt)); err != nil {
			return s.wrap(op, err)
		}
		_, err = s.exec(ctx, "INSERT INTO client_registrations (client_id, token_hash, initial_token_id, created_at) VALUES (?, ?, ?, ?)",
			cl.ID, r.TokenHash, id, now)
		s.clientChanged(ctx, cl.ID)
		return s.wrap(op, err)
	})
	s.clientChanged(ctx, cl.ID)
	return err
}

// ClientRegistration implements storage.RegistrationStore.
func (s *Store) ClientRegistration(ctx context.Context, clientID string) (storage.ClientRegistration, error) {
	reg := storage.ClientRegistration{ClientID: clientID}
	var created int64
	err := s.queryRow(ctx, "SELECT token_hash, initial_token_id, created_at FROM client_registrations WHERE client_id = ?", []any{clientID},
		&reg.TokenHash, &reg.InitialTokenID, &created)
	if err != nil {
		return storage.ClientRegistration{}, s.wrap(fmt.Sprintf("client registration %q", clientID), err)
	}
	reg.CreatedAt = fromMicros(created)
	return reg, nil
}

// SetRegistrationToken implements storage.RegistrationStore.
func (s *Store) SetRegistrationToken(ctx context.Context, clientID string, hash []byte) error {
	n, err := s.execN(ctx, "UPDATE client_registrations SET token_hash = ? WHERE client_id = ?", hash, clientID)
	if err != nil {
		return s.wrap(fmt.Sprintf("set registration token %q", clientID), err)
	}
	if n == 0 {
		return fmt.Errorf("%s: set registration token %q: %w", s.d.Name, clientID, storage.ErrNotFound)
	}
	return nil
}
