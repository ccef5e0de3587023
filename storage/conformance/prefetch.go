package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// testPrefetchUser checks what a backend records in a storage.Prefetch
// while reading a refresh token: nothing, or the token's user as stored.
func testPrefetchUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	u, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app", OpenID: "open-alice", UnionID: "union-alice", NewSubject: "alice", Name: "Alice", Now: ms(0)})
	require.NoError(t, err)
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-alice", "at-alice", newRequest(c, "req-a", "alice", ms(time.Hour))))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-ghost", "at-ghost", newRequest(c, "req-g", "ghost", ms(time.Hour))))

	pctx, pre := storage.WithPrefetch(ctx)
	_, err = s.GetRefreshTokenSession(pctx, "rt-alice", nil)
	require.NoError(t, err)
	if got, ok := pre.User("alice"); ok {
		assert.Equal(t, u, got, "the prefetched user is the stored one")
	}
	_, err = s.GetRefreshTokenSession(pctx, "rt-ghost", nil)
	require.NoError(t, err)
	_, ok := pre.User("ghost")
	assert.False(t, ok, "a token whose user does not exist prefetches nobody")
}
