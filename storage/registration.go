package storage

import (
	"context"
	"slices"
	"time"
)

// InitialAccessToken gates Dynamic Client Registration (RFC 7591 §3): an
// operator issues one, and whoever holds it may register up to Uses
// clients before ExpiresAt. Storage keeps its keyed hash, never the token.
type InitialAccessToken struct {
	// ID names the token in listings and revocations; it is not a secret
	// and cannot be used to register.
	ID string
	// Hash is the keyed hash of the token, unique.
	Hash []byte
	// Description says what the token is for (who it was given to).
	Description string
	// Uses is how many registrations the token allows; UsesLeft, how many
	// remain (0: used up).
	Uses, UsesLeft int
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// LastUsedAt is when it last registered a client; zero if never.
	LastUsedAt time.Time
}

// Clone returns a deep copy of t.
func (t InitialAccessToken) Clone() InitialAccessToken {
	t.Hash = slices.Clone(t.Hash)
	return t
}

// ClientRegistration is what a dynamically registered client manages
// itself with (RFC 7592): the keyed hash of its registration access token.
// It lives as long as its client: deleting the client deletes it.
type ClientRegistration struct {
	ClientID string
	// TokenHash is the keyed hash of the registration access token.
	TokenHash []byte
	// InitialTokenID is the ID of the initial access token that
	// registered the client.
	InitialTokenID string
	CreatedAt      time.Time
}

// Registration asks RegistrationStore.RegisterClient for a new client.
type Registration struct {
	// InitialTokenHash is the hash of the initial access token presented.
	InitialTokenHash []byte
	// Client is the client to create.
	Client Client
	// TokenHash is the keyed hash of the client's new registration access
	// token.
	TokenHash []byte
	// Now is the time of the registration: the token must not have
	// expired by then.
	Now time.Time
}

// RegistrationStore keeps the state of Dynamic Client Registration
// (RFC 7591 and RFC 7592): initial access tokens and the registrations of
// the clients registered with them. Every method is safe across replicas
// sharing one database.
type RegistrationStore interface {
	// CreateInitialAccessToken stores t; ErrAlreadyExists if its ID or
	// Hash is taken.
	CreateInitialAccessToken(ctx context.Context, t InitialAccessToken) error
	// InitialAccessTokens returns every stored token (used up or expired
	// ones too, until DeleteExpired removes them), newest first.
	InitialAccessTokens(ctx context.Context) ([]InitialAccessToken, error)
	// InitialAccessToken returns the token whose hash is hash, or
	// ErrNotFound. It does not check expiry or uses.
	InitialAccessToken(ctx context.Context, hash []byte) (InitialAccessToken, error)
	// DeleteInitialAccessToken revokes a token by ID; ErrNotFound if there
	// is none. Clients it registered stay.
	DeleteInitialAccessToken(ctx context.Context, id string) error

	// RegisterClient atomically takes one use of the initial access token
	// whose hash is r.InitialTokenHash, creates r.Client and stores its
	// registration: all of it, or nothing. It fails with ErrNotFound
	// when the token does not exist, has expired at r.Now or has no use
	// left (so that of N parallel calls on a token with k uses left,
	// exactly k succeed, across replicas), and with ErrAlreadyExists when
	// the client ID is taken. In a transaction (InTx) it joins it.
	RegisterClient(ctx context.Context, r Registration) error
	// ClientRegistration returns the registration of a client, or
	// ErrNotFound when the client was not registered dynamically or no
	// longer exists (DeleteClient deletes its registration with it).
	ClientRegistration(ctx context.Context, clientID string) (ClientRegistration, error)
	// SetRegistrationToken replaces the registration access token hash of
	// a dynamically registered client; ErrNotFound if it has no
	// registration.
	SetRegistrationToken(ctx context.Context, clientID string, hash []byte) error
}
