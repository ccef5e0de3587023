package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wxoidc/wxoidc/storage"
)

// CreateSigningKey implements storage.KeyStore.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if k.KID == "" {
		return fmt.Errorf("%s: create signing key: empty kid", s.d.Name)
	}
	_, err := s.exec(ctx, "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, activates_at) VALUES (?, ?, ?, ?, ?, ?)",
		k.KID, k.Algorithm, k.Private, k.Public, micros(k.CreatedAt), micros(k.ActivatesAt))
	return s.wrap(fmt.Sprintf("create signing key %q", k.KID), err)
}

// SigningKeys implements storage.KeyStore.
func (s *Store) SigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	err := s.query(ctx, "SELECT kid, algorithm, private_key, public_key, created_at, activates_at FROM signing_keys ORDER BY created_at, kid", nil, func(rows *sql.Rows) error {
		var (
			k                 storage.SigningKey
			created, activate int64
		)
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.Private, &k.Public, &created, &activate); err != nil {
			return err
		}
		k.CreatedAt, k.ActivatesAt = fromMicros(created), fromMicros(activate)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, s.wrap("signing keys", err)
	}
	return out, nil
}

// DeleteSigningKey implements storage.KeyStore.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	_, err := s.exec(ctx, "DELETE FROM signing_keys WHERE kid = ?", kid)
	return s.wrap(fmt.Sprintf("delete signing key %q", kid), err)
}
