package sqlstore

import (
	"context"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// PutRefreshSuccessor implements storage.RefreshGraceStore; the first
// record of a signature stays. In a transaction the write is queued with
// the rotation's (the refresh path gains no statement of its own).
func (s *Store) PutRefreshSuccessor(ctx context.Context, r storage.RefreshSuccessor) error {
	return s.write(ctx, "put refresh successor", nil, `INSERT INTO refresh_successors (signature, successor, response, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (signature) DO NOTHING`, hash(r.Signature), r.SuccessorSignature, r.Response, micros(r.ExpiresAt))
}

// RefreshSuccessor implements storage.RefreshGraceStore. (The successor's
// signature is kept as it is: without its token's key part it grants
// nothing.)
func (s *Store) RefreshSuccessor(ctx context.Context, signature string, now time.Time) (storage.RefreshSuccessor, error) {
	r := storage.RefreshSuccessor{Signature: signature}
	var exp int64
	err := s.queryRow(ctx, "SELECT successor, response, expires_at FROM refresh_successors WHERE signature = ? AND expires_at > ?",
		[]any{hash(signature), micros(now)}, &r.SuccessorSignature, &r.Response, &exp)
	if err != nil {
		return storage.RefreshSuccessor{}, s.wrap("refresh successor", err)
	}
	r.ExpiresAt = fromMicros(exp)
	return r, nil
}
