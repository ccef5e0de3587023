package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

func testClients(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := createClient(t, s, "client-b")
	createClient(t, s, "client-a")

	got, err := s.Client(ctx, "client-b")
	require.NoError(t, err)
	assertClient(t, *want, got)

	fc, err := s.GetClient(ctx, "client-b")
	require.NoError(t, err)
	sc, ok := fc.(*storage.Client)
	require.True(t, ok, "GetClient returns %T, want *storage.Client", fc)
	assertClient(t, *want, *sc)
	assert.False(t, fc.IsPublic())

	// A returned client is a copy.
	got.RedirectURIs[0] = "https://evil.example"
	again, err := s.Client(ctx, "client-b")
	require.NoError(t, err)
	assert.Equal(t, want.RedirectURIs, again.RedirectURIs)

	err = s.CreateClient(ctx, storage.Client{ID: "client-a"})
	assert.ErrorIs(t, err, storage.ErrAlreadyExists)

	list, err := s.ListClients(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "client-a", list[0].ID)
	assert.Equal(t, "client-b", list[1].ID)
	assertClient(t, *want, list[1])

	// A public client with no optional fields round-trips too, with
	// defaults filled in.
	require.NoError(t, s.CreateClient(ctx, storage.Client{ID: "public", TokenEndpointAuthMethod: storage.AuthMethodNone}))
	pub, err := s.Client(ctx, "public")
	require.NoError(t, err)
	assert.True(t, pub.IsPublic())
	assert.Empty(t, pub.SecretHash)
	assert.False(t, pub.CreatedAt.IsZero(), "CreatedAt must be set")
	assert.False(t, pub.UpdatedAt.IsZero(), "UpdatedAt must be set")

	require.NoError(t, s.DeleteClient(ctx, "client-a"))
	_, err = s.Client(ctx, "client-a")
	requireNotFound(t, err)
	requireNotFound(t, s.DeleteClient(ctx, "client-a"))
}

func assertClient(t *testing.T, want, got storage.Client) {
	t.Helper()
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: got %v, want %v", got.CreatedAt, want.CreatedAt)
	assert.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: got %v, want %v", got.UpdatedAt, want.UpdatedAt)
	want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	assert.Equal(t, want, got)
}

func testUpdateClient(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	old := createClient(t, s, "c1")
	require.NoError(t, s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		assertClient(t, *old, c)
		c.Name = "renamed"
		c.Scopes = append(c.Scopes, "email")
		c.SecretHash = []byte("new-hash")
		return c, nil
	}))
	got, err := s.Client(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	assert.Equal(t, []string{"openid", "offline_access", "phone", "email"}, got.Scopes)
	assert.Equal(t, []byte("new-hash"), got.SecretHash)
	assert.True(t, old.CreatedAt.Equal(got.CreatedAt), "CreatedAt must not change")
	assert.True(t, got.UpdatedAt.After(old.UpdatedAt), "UpdatedAt must advance")

	errBoom := errors.New("boom")
	err = s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		c.Name = "lost"
		return c, errBoom
	})
	assert.ErrorIs(t, err, errBoom)
	err = s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		c.ID = "other"
		return c, nil
	})
	assert.Error(t, err, "changing the ID must fail")
	got, err = s.Client(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	_, err = s.Client(ctx, "other")
	requireNotFound(t, err)
}
