package conformance

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// parallelism is how many goroutines race in each concurrency test.
const parallelism = 50

// RunConcurrencyTests runs the tests of the rules that only show under
// concurrent use: single use of codes and refresh tokens, one user per
// person, compare-and-swap of server tokens and client updates, exclusive
// leases. Run them with -race.
func RunConcurrencyTests(t *testing.T, newStorage NewStorage) {
	run(t, newStorage, append([]testCase{
		{"LinkIdentityOnePerson", testConcurrentLinkIdentity},
		{"LinkIdentityOnePersonTwoApps", testConcurrentLinkIdentityTwoApps},
		{"LinkIdentityNoUnionID", testConcurrentLinkIdentityNoUnionID},
		{"InvalidateAuthorizeCode", testConcurrentInvalidate},
		{"RotateRefreshToken", testConcurrentRotate},
		{"RefreshFlowInTransaction", testConcurrentRefreshFlow},
		{"SaveServerToken", testConcurrentSaveServerToken},
		{"AcquireLease", testConcurrentAcquireLease},
		{"TakeRate", testConcurrentTakeRate},
		{"UpdateClient", testConcurrentUpdateClient},
		{"SetClientAssertionJWT", testConcurrentJTI},
		{"RegisterClient", testConcurrentRegisterClient},
	}, slices.Concat(webLoginConcurrencyTests, deviceConcurrencyTests, pushConcurrencyTests, statsConcurrencyTests)...))
}

// race runs fn(i) for i in [0, n) in n goroutines released together.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func linkConcurrently(t *testing.T, s storage.Storage, req func(i int) storage.LinkRequest) []storage.User {
	t.Helper()
	users := make([]storage.User, parallelism)
	var created atomic.Int32
	race(parallelism, func(i int) {
		u, c, err := linkIdentity(t.Context(), s, req(i))
		if !assert.NoError(t, err) {
			return
		}
		users[i] = u
		if c {
			created.Add(1)
		}
	})
	assert.Equal(t, int32(1), created.Load(), "exactly one call creates the user")
	for _, u := range users {
		assert.Equal(t, users[0].Subject, u.Subject, "every call returns the same user")
	}
	_, err := s.User(t.Context(), users[0].Subject)
	require.NoError(t, err)
	return users
}

func testConcurrentLinkIdentity(t *testing.T, s storage.Storage) {
	now := ms(0)
	users := linkConcurrently(t, s, func(i int) storage.LinkRequest {
		return storage.LinkRequest{AppID: "app", OpenID: "open", UnionID: "union", NewSubject: fmt.Sprint("sub-", i), Now: now}
	})
	assert.Equal(t, "union", users[0].UnionID)
	ids, err := s.Identities(t.Context(), users[0].Subject)
	require.NoError(t, err)
	assert.Len(t, ids, 1)
}

func testConcurrentLinkIdentityTwoApps(t *testing.T, s storage.Storage) {
	now := ms(0)
	users := linkConcurrently(t, s, func(i int) storage.LinkRequest {
		app := fmt.Sprint("app-", i%2)
		return storage.LinkRequest{AppID: app, OpenID: "open-" + app, UnionID: "union", NewSubject: fmt.Sprint("sub-", i), Now: now}
	})
	ids, err := s.Identities(t.Context(), users[0].Subject)
	require.NoError(t, err)
	assert.Len(t, ids, 2, "both apps' identities are linked to the one user")
}

func testConcurrentLinkIdentityNoUnionID(t *testing.T, s storage.Storage) {
	now := ms(0)
	linkConcurrently(t, s, func(i int) storage.LinkRequest {
		return storage.LinkRequest{AppID: "app", OpenID: "open", NewSubject: fmt.Sprint("sub-", i), Now: now}
	})
}

func testConcurrentInvalidate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code", newRequest(c, "req", "alice", ms(time.Hour))))
	var wins atomic.Int32
	race(parallelism, func(int) {
		err := s.InvalidateAuthorizeCodeSession(ctx, "code")
		if err == nil {
			wins.Add(1)
			return
		}
		assert.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode)
	})
	assert.Equal(t, int32(1), wins.Load(), "exactly one exchange may invalidate the code")
}

func testConcurrentRotate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req", "alice", ms(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt", "at", req))
	var wins atomic.Int32
	race(parallelism, func(int) {
		err := s.RotateRefreshToken(ctx, "req", "rt")
		if err == nil {
			wins.Add(1)
			return
		}
		assert.ErrorIs(t, err, fosite.ErrNotFound)
	})
	assert.Equal(t, int32(1), wins.Load(), "exactly one refresh may rotate the token")
}

// testConcurrentRefreshFlow races fosite's refresh steps, each in a
// transaction when the backend offers them: rotate, then write the new pair.
// Exactly one request may mint a new pair.
func testConcurrentRefreshFlow(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req", "alice", ms(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt", "at", req))
	var wins atomic.Int32
	race(parallelism, func(i int) {
		txCtx, err := fositestorage.MaybeBeginTx(ctx, s)
		if !assert.NoError(t, err) {
			return
		}
		err = s.RotateRefreshToken(txCtx, "req", "rt")
		if err == nil {
			err = s.CreateAccessTokenSession(txCtx, fmt.Sprint("at-", i), req)
		}
		if err == nil {
			err = s.CreateRefreshTokenSession(txCtx, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), req)
		}
		if err == nil {
			// A store may queue the writes and report the lost race here.
			if err = fositestorage.MaybeCommitTx(txCtx, s); err == nil {
				wins.Add(1)
				return
			}
		}
		assert.ErrorIs(t, err, fosite.ErrNotFound)
		assert.NoError(t, fositestorage.MaybeRollbackTx(txCtx, s))
	})
	assert.Equal(t, int32(1), wins.Load(), "exactly one refresh may mint a new pair")
}

func testConcurrentSaveServerToken(t *testing.T, s storage.Storage) {
	base := ms(time.Hour)
	race(parallelism, func(i int) {
		tok := storage.ServerToken{AppID: "app", Token: fmt.Appendf(nil, "t%d", i), ExpiresAt: base.Add(time.Duration(i) * time.Second)}
		got, err := s.SaveServerToken(t.Context(), tok)
		if assert.NoError(t, err) {
			assert.False(t, got.ExpiresAt.Before(tok.ExpiresAt), "the returned token is at least as fresh as the one saved")
		}
	})
	got, err := s.ServerToken(t.Context(), "app")
	require.NoError(t, err)
	assert.Equal(t, fmt.Appendf(nil, "t%d", parallelism-1), got.Token, "the latest expiry wins")
	assert.True(t, base.Add(time.Duration(parallelism-1)*time.Second).Equal(got.ExpiresAt))
}

func testConcurrentAcquireLease(t *testing.T, s storage.Storage) {
	var holders atomic.Int32
	race(parallelism, func(i int) {
		ok, err := s.AcquireLease(t.Context(), "janitor", fmt.Sprint("replica-", i), time.Minute)
		if assert.NoError(t, err) && ok {
			holders.Add(1)
		}
	})
	assert.Equal(t, int32(1), holders.Load(), "exactly one replica holds the lease")
}

func testConcurrentUpdateClient(t *testing.T, s storage.Storage) {
	createClient(t, s, "c1")
	race(parallelism, func(i int) {
		assert.NoError(t, s.UpdateClient(t.Context(), "c1", func(c storage.Client) (storage.Client, error) {
			c.Audience = append(c.Audience, fmt.Sprint("aud-", i))
			return c, nil
		}))
	})
	c, err := s.Client(t.Context(), "c1")
	require.NoError(t, err)
	assert.Len(t, c.Audience, parallelism+1, "no update may be lost")
}

func testConcurrentJTI(t *testing.T, s storage.Storage) {
	var wins atomic.Int32
	exp := ms(time.Hour)
	race(parallelism, func(int) {
		err := s.SetClientAssertionJWT(t.Context(), "jti", exp)
		if err == nil {
			wins.Add(1)
			return
		}
		assert.ErrorIs(t, err, fosite.ErrJTIKnown)
	})
	assert.Equal(t, int32(1), wins.Load(), "a JTI is accepted once")
}
