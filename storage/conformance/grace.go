package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// testRefreshGrace checks storage.RefreshGraceStore: the first record of a
// signature stays, a record ends with its grace, DeleteExpired removes it.
func testRefreshGrace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	first := storage.RefreshSuccessor{Signature: "rotated-sig", SuccessorSignature: "successor-sig", Response: []byte("sealed answer"), ExpiresAt: now.Add(5 * time.Second)}
	_, err := s.RefreshSuccessor(ctx, first.Signature, now)
	require.True(t, errors.Is(err, storage.ErrNotFound), "unknown signature: %v", err)
	require.NoError(t, s.PutRefreshSuccessor(ctx, first))
	second := first
	second.SuccessorSignature, second.Response = "other-successor", []byte("other answer")
	require.NoError(t, s.PutRefreshSuccessor(ctx, second), "a second record is not an error")

	got, err := s.RefreshSuccessor(ctx, first.Signature, now.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, first, got, "the first record stays")

	_, err = s.RefreshSuccessor(ctx, first.Signature, first.ExpiresAt)
	require.True(t, errors.Is(err, storage.ErrNotFound), "after the grace: %v", err)

	n, err := s.DeleteExpired(ctx, first.ExpiresAt.Add(time.Second))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(1))
	require.NoError(t, s.PutRefreshSuccessor(ctx, second), "after DeleteExpired the signature is free")
	got, err = s.RefreshSuccessor(ctx, first.Signature, now)
	require.NoError(t, err)
	require.Equal(t, second, got)
}
