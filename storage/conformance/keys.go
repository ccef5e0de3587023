package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t0 := ms(-time.Hour)
	k1 := storage.SigningKey{KID: "b", Algorithm: "RS256", Private: []byte("enc-1"), Public: []byte(`{"kty":"RSA"}`), CreatedAt: t0, ActivatesAt: t0.Add(time.Minute)}
	k2 := storage.SigningKey{KID: "a", Algorithm: "ES256", Private: []byte("enc-2"), Public: []byte(`{"kty":"EC"}`), CreatedAt: t0, ActivatesAt: t0.Add(time.Minute)}
	k3 := storage.SigningKey{KID: "0", Algorithm: "ES256", Private: []byte("enc-3"), Public: []byte(`{"kty":"EC"}`), CreatedAt: t0.Add(time.Second), ActivatesAt: t0.Add(time.Hour)}
	for _, k := range []storage.SigningKey{k1, k2, k3} {
		require.NoError(t, s.CreateSigningKey(ctx, k))
	}
	assert.ErrorIs(t, s.CreateSigningKey(ctx, k1), storage.ErrAlreadyExists)

	keys, err := s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 3)
	for i, want := range []storage.SigningKey{k2, k1, k3} {
		got := keys[i]
		assert.Equal(t, want.KID, got.KID)
		assert.Equal(t, want.Algorithm, got.Algorithm)
		assert.Equal(t, want.Private, got.Private)
		assert.JSONEq(t, string(want.Public), string(got.Public))
		assert.True(t, want.CreatedAt.Equal(got.CreatedAt))
		assert.True(t, want.ActivatesAt.Equal(got.ActivatesAt))
	}

	require.NoError(t, s.DeleteSigningKey(ctx, "b"))
	require.NoError(t, s.DeleteSigningKey(ctx, "b"))
	keys, err = s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, "a", keys[0].KID)
	assert.Equal(t, "0", keys[1].KID)
}
