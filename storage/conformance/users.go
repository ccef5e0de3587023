package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

func testLinkIdentity(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)

	// Rule 3: a new person.
	u, created, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-1", Name: "Alice", Picture: "https://img/a", Now: now})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "union-1", u.UnionID)
	assert.Equal(t, "Alice", u.Name)
	assert.Equal(t, "https://img/a", u.Picture)
	assert.True(t, now.Equal(u.CreatedAt))

	// Rule 1: the same identity again.
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "Alice", u.Name, "empty name must not overwrite")

	// Rule 2: another app, same unionid: linked to the same user.
	later := now.Add(time.Second)
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-b", OpenID: "open-b", UnionID: "union-1", NewSubject: "sub-3", Name: "Alice B", Now: later})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "Alice B", u.Name, "a non-empty name is stored")

	ids, err := s.Identities(ctx, "sub-1")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	assert.Equal(t, "app-a", ids[0].AppID)
	assert.Equal(t, "open-a", ids[0].OpenID)
	assert.Equal(t, "union-1", ids[0].UnionID)
	assert.Equal(t, "app-b", ids[1].AppID)
	assert.Equal(t, "sub-1", ids[1].Subject)
	assert.True(t, later.Equal(ids[1].CreatedAt))

	id, err := s.Identity(ctx, "app-b", "open-b")
	require.NoError(t, err)
	assert.Equal(t, ids[1], id)

	got, err := s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "Alice B", got.Name)
	assert.Equal(t, "union-1", got.UnionID)
	for _, sub := range []string{"sub-2", "sub-3"} {
		_, err = s.User(ctx, sub)
		requireNotFound(t, err)
	}

	// Rule 3 without a unionid; the same openid in another app is another
	// person.
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-c", OpenID: "open-a", NewSubject: "sub-4", Now: now})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "sub-4", u.Subject)
	assert.Empty(t, u.UnionID)
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-c", OpenID: "open-a", NewSubject: "sub-5", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-4", u.Subject)

	// Two users without unionid coexist (empty is not a unionid).
	_, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-c", OpenID: "open-z", NewSubject: "sub-6", Now: now})
	require.NoError(t, err)
	assert.True(t, created)

	// A page's identities at once: each user's as Identities has them;
	// subjects without identities or users have no entry.
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "sub-bare"}))
	page, err := s.IdentitiesOf(ctx, []string{"sub-1", "sub-4", "sub-bare", "sub-none", "sub-6"})
	require.NoError(t, err)
	assert.Len(t, page, 3)
	for _, sub := range []string{"sub-1", "sub-4", "sub-6"} {
		ids, err := s.Identities(ctx, sub)
		require.NoError(t, err)
		assert.Equal(t, ids, page[sub], sub)
	}
	page, err = s.IdentitiesOf(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, page)
}

func testLinkIdentityUnionIDAttach(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	// An identity first seen without a unionid...
	_, created, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", NewSubject: "sub-1", Now: now})
	require.NoError(t, err)
	require.True(t, created)
	// ...gets it attached when a later login brings it.
	u, created, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-x", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "union-1", u.UnionID)
	id, err := s.Identity(ctx, "app-a", "open-a")
	require.NoError(t, err)
	assert.Equal(t, "union-1", id.UnionID)
	got, err := s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "union-1", got.UnionID)

	// Cross-app: the unionid now links app-b's identity to the same user.
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-b", OpenID: "open-b", UnionID: "union-1", NewSubject: "sub-y", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)

	// A unionid that another user holds is not attached.
	_, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-c", OpenID: "open-c", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)
	require.True(t, created)
	u, created, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-c", OpenID: "open-c", UnionID: "union-1", NewSubject: "sub-z", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-2", u.Subject)
	assert.Empty(t, u.UnionID)
	id, err = s.Identity(ctx, "app-c", "open-c")
	require.NoError(t, err)
	assert.Empty(t, id.UnionID)
	got, err = s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "union-1", got.UnionID)
}

func testUsers(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(-time.Hour)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app", OpenID: "o1", UnionID: "union-1", NewSubject: "sub-1", Now: now})
	require.NoError(t, err)
	_, _, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "app", OpenID: "o2", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)

	require.NoError(t, s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.PhoneNumber = "+8613800138000"
		u.Name = "Bob"
		u.Picture = "https://img/b"
		u.UnionID = "union-2"
		return u, nil
	}))
	u, err := s.User(ctx, "sub-2")
	require.NoError(t, err)
	assert.Equal(t, "+8613800138000", u.PhoneNumber)
	assert.Equal(t, "Bob", u.Name)
	assert.Equal(t, "https://img/b", u.Picture)
	assert.Equal(t, "union-2", u.UnionID)
	assert.True(t, now.Equal(u.CreatedAt))
	assert.True(t, u.UpdatedAt.After(now))

	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.UnionID = "union-1"
		return u, nil
	})
	assert.ErrorIs(t, err, storage.ErrAlreadyExists, "a unionid is held by one user")
	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.Subject = "sub-9"
		return u, nil
	})
	assert.Error(t, err, "the subject cannot change")
	errBoom := errors.New("boom")
	assert.ErrorIs(t, s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) { return u, errBoom }), errBoom)

	// The unionid of sub-2 now links new identities to it.
	u, created, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app-b", OpenID: "o3", UnionID: "union-2", NewSubject: "sub-3", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-2", u.Subject)
}
