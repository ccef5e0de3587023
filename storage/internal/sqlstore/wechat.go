package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// PutSessionKey implements storage.WeChatStore with one upsert.
func (s *Store) PutSessionKey(ctx context.Context, k storage.SessionKey) error {
	return s.write(ctx, "put session key", nil, putSessionKey, k.Subject, k.AppID, k.OpenID, k.Ciphertext, micros(k.UpdatedAt))
}

// putSessionKey replaces a user's session key for an app. The Mini Program
// grant runs it in the transaction that stores the tokens.
const putSessionKey = `INSERT INTO wechat_session_keys (subject, app_id, open_id, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (subject, app_id) DO UPDATE SET open_id = excluded.open_id, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`

// SessionKey implements storage.WeChatStore.
func (s *Store) SessionKey(ctx context.Context, subject, appID string) (storage.SessionKey, error) {
	k := storage.SessionKey{Subject: subject, AppID: appID}
	var updated int64
	err := s.queryRow(ctx, "SELECT open_id, ciphertext, updated_at FROM wechat_session_keys WHERE subject = ? AND app_id = ?",
		[]any{subject, appID}, &k.OpenID, &k.Ciphertext, &updated)
	if err != nil {
		return storage.SessionKey{}, s.wrap("session key", err)
	}
	k.UpdatedAt = fromMicros(updated)
	return k, nil
}

// ServerToken implements storage.WeChatStore.
func (s *Store) ServerToken(ctx context.Context, appID string) (storage.ServerToken, error) {
	t := storage.ServerToken{AppID: appID}
	var exp int64
	err := s.queryRow(ctx, "SELECT token, expires_at FROM wechat_server_tokens WHERE app_id = ?", []any{appID}, &t.Token, &exp)
	if err != nil {
		return storage.ServerToken{}, s.wrap(fmt.Sprintf("server token of %q", appID), err)
	}
	t.ExpiresAt = fromMicros(exp)
	return t, nil
}

// SaveServerToken implements storage.WeChatStore with one conditional
// upsert: t replaces the stored token only if it expires later.
func (s *Store) SaveServerToken(ctx context.Context, t storage.ServerToken) (storage.ServerToken, error) {
	n, err := s.execN(ctx, `INSERT INTO wechat_server_tokens (app_id, token, expires_at) VALUES (?, ?, ?)
ON CONFLICT (app_id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
WHERE wechat_server_tokens.expires_at < excluded.expires_at`,
		t.AppID, t.Token, micros(t.ExpiresAt))
	if err != nil {
		return storage.ServerToken{}, s.wrap(fmt.Sprintf("save server token of %q", t.AppID), err)
	}
	if n == 1 {
		t.ExpiresAt = fromMicros(micros(t.ExpiresAt))
		return t, nil
	}
	// A token that expires no earlier is stored; return it.
	return s.ServerToken(ctx, t.AppID)
}

// DeleteServerToken implements storage.WeChatStore.
func (s *Store) DeleteServerToken(ctx context.Context, appID string, expiresAt time.Time) error {
	_, err := s.exec(ctx, "DELETE FROM wechat_server_tokens WHERE app_id = ? AND expires_at = ?", appID, micros(expiresAt))
	return s.wrap(fmt.Sprintf("delete server token of %q", appID), err)
}
