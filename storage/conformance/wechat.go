package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

func testSessionKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	k := storage.SessionKey{Subject: "sub-1", AppID: "app", OpenID: "open", Ciphertext: []byte("c1"), UpdatedAt: ms(-time.Minute)}
	require.NoError(t, s.PutSessionKey(ctx, k))
	require.NoError(t, s.PutSessionKey(ctx, storage.SessionKey{Subject: "sub-1", AppID: "app-2", OpenID: "open-2", Ciphertext: []byte("other"), UpdatedAt: ms(0)}))
	got, err := s.SessionKey(ctx, "sub-1", "app")
	require.NoError(t, err)
	assert.Equal(t, k.OpenID, got.OpenID)
	assert.Equal(t, k.Ciphertext, got.Ciphertext)
	assert.True(t, k.UpdatedAt.Equal(got.UpdatedAt))

	k2 := storage.SessionKey{Subject: "sub-1", AppID: "app", OpenID: "open", Ciphertext: []byte("c2"), UpdatedAt: ms(0)}
	require.NoError(t, s.PutSessionKey(ctx, k2))
	got, err = s.SessionKey(ctx, "sub-1", "app")
	require.NoError(t, err)
	assert.Equal(t, []byte("c2"), got.Ciphertext, "Put replaces")
	assert.True(t, k2.UpdatedAt.Equal(got.UpdatedAt))
	got, err = s.SessionKey(ctx, "sub-1", "app-2")
	require.NoError(t, err)
	assert.Equal(t, []byte("other"), got.Ciphertext)
	_, err = s.SessionKey(ctx, "sub-2", "app")
	requireNotFound(t, err)
}

func testServerToken(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t1 := storage.ServerToken{AppID: "app", Token: []byte("t1"), ExpiresAt: ms(time.Hour)}
	got, err := s.SaveServerToken(ctx, t1)
	require.NoError(t, err)
	assertServerToken(t, t1, got)

	// A staler token loses and the caller learns the winner.
	stale := storage.ServerToken{AppID: "app", Token: []byte("t0"), ExpiresAt: ms(30 * time.Minute)}
	got, err = s.SaveServerToken(ctx, stale)
	require.NoError(t, err)
	assertServerToken(t, t1, got)
	// So does one that expires at the same time.
	same := storage.ServerToken{AppID: "app", Token: []byte("t1-bis"), ExpiresAt: t1.ExpiresAt}
	got, err = s.SaveServerToken(ctx, same)
	require.NoError(t, err)
	assertServerToken(t, t1, got)
	got, err = s.ServerToken(ctx, "app")
	require.NoError(t, err)
	assertServerToken(t, t1, got)

	t2 := storage.ServerToken{AppID: "app", Token: []byte("t2"), ExpiresAt: ms(2 * time.Hour)}
	got, err = s.SaveServerToken(ctx, t2)
	require.NoError(t, err)
	assertServerToken(t, t2, got)

	other := storage.ServerToken{AppID: "app-2", Token: []byte("x"), ExpiresAt: ms(time.Minute)}
	_, err = s.SaveServerToken(ctx, other)
	require.NoError(t, err)

	// Delete only removes the token the caller saw.
	require.NoError(t, s.DeleteServerToken(ctx, "app", t1.ExpiresAt))
	got, err = s.ServerToken(ctx, "app")
	require.NoError(t, err)
	assertServerToken(t, t2, got)
	require.NoError(t, s.DeleteServerToken(ctx, "app", t2.ExpiresAt))
	_, err = s.ServerToken(ctx, "app")
	requireNotFound(t, err)
	require.NoError(t, s.DeleteServerToken(ctx, "app", t2.ExpiresAt))
	got, err = s.ServerToken(ctx, "app-2")
	require.NoError(t, err)
	assertServerToken(t, other, got)
}

func assertServerToken(t *testing.T, want, got storage.ServerToken) {
	t.Helper()
	assert.Equal(t, want.AppID, got.AppID)
	assert.Equal(t, want.Token, got.Token)
	assert.True(t, want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt: got %v, want %v", got.ExpiresAt, want.ExpiresAt)
}
