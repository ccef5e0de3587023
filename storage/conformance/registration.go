package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	fositestorage "github.com/ory/fosite/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// newIAT stores an initial access token with the given uses, expiring at
// exp, and returns it.
func newIAT(t *testing.T, s storage.Storage, id string, uses int, exp time.Time) storage.InitialAccessToken {
	t.Helper()
	iat := storage.InitialAccessToken{ID: id, Hash: []byte("hash-of-" + id), Description: "for " + id,
		Uses: uses, UsesLeft: uses, CreatedAt: ms(-time.Minute), ExpiresAt: exp}
	require.NoError(t, s.CreateInitialAccessToken(t.Context(), iat))
	return iat
}

func registration(iat storage.InitialAccessToken, clientID string) storage.Registration {
	return storage.Registration{
		InitialTokenHash: iat.Hash,
		Client: storage.Client{ID: clientID, SecretHash: []byte("secret-hash"), RedirectURIs: []string{"https://rp.example/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: storage.AuthMethodBasic},
		TokenHash: []byte("rat-hash-" + clientID),
		Now:       ms(0),
	}
}

func testInitialAccessTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	older := newIAT(t, s, "iat-a", 1, ms(time.Hour))
	newer := storage.InitialAccessToken{ID: "iat-b", Hash: []byte("hash-b"), Description: "partner", Uses: 5, UsesLeft: 5, CreatedAt: ms(0), ExpiresAt: ms(2 * time.Hour)}
	require.NoError(t, s.CreateInitialAccessToken(ctx, newer))

	dup := newer
	dup.Hash = []byte("other")
	assert.ErrorIs(t, s.CreateInitialAccessToken(ctx, dup), storage.ErrAlreadyExists, "duplicate ID")
	dup = newer
	dup.ID = "iat-c"
	assert.ErrorIs(t, s.CreateInitialAccessToken(ctx, dup), storage.ErrAlreadyExists, "duplicate hash")

	list, err := s.InitialAccessTokens(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, newer, list[0], "newest first")
	assert.Equal(t, older, list[1])

	got, err := s.InitialAccessToken(ctx, []byte("hash-b"))
	require.NoError(t, err)
	assert.Equal(t, newer, got)
	_, err = s.InitialAccessToken(ctx, []byte("hash-x"))
	requireNotFound(t, err)

	// DeleteExpired removes tokens past their expiry, used up or not.
	newIAT(t, s, "iat-old", 1, ms(-time.Minute))
	_, err = s.DeleteExpired(ctx, ms(0))
	require.NoError(t, err)
	list, err = s.InitialAccessTokens(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 2, "the expired token must be gone, the others kept")

	require.NoError(t, s.DeleteInitialAccessToken(ctx, "iat-b"))
	requireNotFound(t, s.DeleteInitialAccessToken(ctx, "iat-b"))
	_, err = s.InitialAccessToken(ctx, []byte("hash-b"))
	requireNotFound(t, err)
}

func testRegisterClient(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	iat := newIAT(t, s, "iat-two", 2, ms(time.Hour))

	r := registration(iat, "dyn-1")
	require.NoError(t, s.RegisterClient(ctx, r))
	c, err := s.Client(ctx, "dyn-1")
	require.NoError(t, err)
	assert.Equal(t, r.Client.RedirectURIs, c.RedirectURIs)
	assert.Equal(t, []byte("secret-hash"), c.SecretHash)
	assert.False(t, c.CreatedAt.IsZero())
	reg, err := s.ClientRegistration(ctx, "dyn-1")
	require.NoError(t, err)
	assert.Equal(t, storage.ClientRegistration{ClientID: "dyn-1", TokenHash: []byte("rat-hash-dyn-1"), InitialTokenID: "iat-two", CreatedAt: r.Now}, reg)
	got, err := s.InitialAccessToken(ctx, iat.Hash)
	require.NoError(t, err)
	assert.Equal(t, 1, got.UsesLeft)
	assert.True(t, got.LastUsedAt.Equal(r.Now), "LastUsedAt: got %v, want %v", got.LastUsedAt, r.Now)

	// A taken client ID fails and takes no use.
	err = s.RegisterClient(ctx, registration(iat, "dyn-1"))
	assert.ErrorIs(t, err, storage.ErrAlreadyExists)
	got, err = s.InitialAccessToken(ctx, iat.Hash)
	require.NoError(t, err)
	assert.Equal(t, 1, got.UsesLeft, "a failed registration must not take a use")

	require.NoError(t, s.RegisterClient(ctx, registration(iat, "dyn-2")))
	err = s.RegisterClient(ctx, registration(iat, "dyn-3"))
	requireNotFound(t, err)
	_, err = s.Client(ctx, "dyn-3")
	requireNotFound(t, err)
	_, err = s.ClientRegistration(ctx, "dyn-3")
	requireNotFound(t, err)

	// Expired and unknown tokens register nothing.
	expired := newIAT(t, s, "iat-expired", 5, ms(-time.Second))
	requireNotFound(t, s.RegisterClient(ctx, registration(expired, "dyn-4")))
	requireNotFound(t, s.RegisterClient(ctx, registration(storage.InitialAccessToken{Hash: []byte("nobody")}, "dyn-5")))
	for _, id := range []string{"dyn-4", "dyn-5"} {
		_, err = s.Client(ctx, id)
		requireNotFound(t, err)
	}

	// The registration token can be replaced; a client without a
	// registration has none.
	require.NoError(t, s.SetRegistrationToken(ctx, "dyn-2", []byte("new-rat")))
	reg, err = s.ClientRegistration(ctx, "dyn-2")
	require.NoError(t, err)
	assert.Equal(t, []byte("new-rat"), reg.TokenHash)
	createClient(t, s, "static")
	_, err = s.ClientRegistration(ctx, "static")
	requireNotFound(t, err)
	requireNotFound(t, s.SetRegistrationToken(ctx, "static", []byte("x")))

	// Deleting the client deletes its registration; a client created
	// later with the same ID does not inherit it.
	require.NoError(t, s.DeleteClient(ctx, "dyn-1"))
	_, err = s.ClientRegistration(ctx, "dyn-1")
	requireNotFound(t, err)
	require.NoError(t, s.CreateClient(ctx, storage.Client{ID: "dyn-1", TokenEndpointAuthMethod: storage.AuthMethodNone}))
	_, err = s.ClientRegistration(ctx, "dyn-1")
	requireNotFound(t, err)

	// Revoking the initial access token keeps the clients it registered.
	require.NoError(t, s.DeleteInitialAccessToken(ctx, "iat-two"))
	_, err = s.ClientRegistration(ctx, "dyn-2")
	require.NoError(t, err)
}

func testRegisterClientInTransaction(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	iat := newIAT(t, s, "iat-tx", 1, ms(time.Hour))
	errBoom := errors.New("boom")
	err := storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.RegisterClient(ctx, registration(iat, "dyn-tx")); err != nil {
			return err
		}
		if err := s.AppendEvents(ctx, storage.Event{Type: storage.EventClientCreated, ClientID: "dyn-tx"}); err != nil {
			return err
		}
		return errBoom
	})
	assert.ErrorIs(t, err, errBoom)
	if _, ok := s.(fositestorage.Transactional); !ok {
		return // the memory store applies changes as they are made
	}
	_, err = s.Client(ctx, "dyn-tx")
	requireNotFound(t, err)
	got, err := s.InitialAccessToken(ctx, iat.Hash)
	require.NoError(t, err)
	assert.Equal(t, 1, got.UsesLeft, "a rolled-back registration must not take a use")

	err = storage.InTx(ctx, s, func(ctx context.Context) error {
		return s.RegisterClient(ctx, registration(iat, "dyn-tx"))
	})
	require.NoError(t, err)
	_, err = s.ClientRegistration(ctx, "dyn-tx")
	require.NoError(t, err)
}

func testConcurrentRegisterClient(t *testing.T, s storage.Storage) {
	const uses = 3
	iat := newIAT(t, s, "iat-race", uses, ms(time.Hour))
	var ok, used atomic.Int32
	race(parallelism, func(i int) {
		err := s.RegisterClient(t.Context(), registration(iat, fmt.Sprintf("racer-%d", i)))
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, storage.ErrNotFound):
			used.Add(1)
		default:
			t.Errorf("RegisterClient: %v", err)
		}
	})
	assert.Equal(t, int32(uses), ok.Load(), "registrations")
	assert.Equal(t, int32(parallelism-uses), used.Load(), "refused as used up")
	got, err := s.InitialAccessToken(t.Context(), iat.Hash)
	require.NoError(t, err)
	assert.Equal(t, 0, got.UsesLeft)
	list, err := s.ListClients(t.Context())
	require.NoError(t, err)
	assert.Len(t, list, uses)
}
