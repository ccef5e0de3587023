package storage

import (
	"context"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
)

// Storage is the contract every backend implements. It is safe for
// concurrent use by many goroutines and, for the SQL backends, by many
// provider replicas sharing one database.
//
// Backends may also implement fosite's storage.Transactional; fosite then
// wraps its multi-write steps (code exchange, refresh rotation, reuse
// detection) in one transaction. Every method must use the transaction it
// finds in its context. A backend may queue a transaction's writes and send
// them at Commit: a conditional write (code invalidation, refresh rotation)
// that finds its code or token already used then fails at Commit, with the
// error its method documents, and the transaction writes nothing.
type Storage interface {
	FositeStore
	ClientStore
	RegistrationStore
	UserStore
	EventStore
	Stats
	KeyStore
	WeChatStore
	LeaseStore
	RateStore
	LoginStateStore
	BrowserSessionStore
	ConsentStore
	RefreshGraceStore
	BackchannelStore
	DeviceAuthStore
	PushEventStore

	// DeleteExpired removes every record whose lifetime ended before the
	// given time (tokens, codes, PAR requests, JWT IDs, leases, login
	// states, browser sessions, idle rate limits, device authorizations
	// DeviceRetention after they expired, push events, refresh successors,
	// session clients, logout jobs past their give-up time, initial access
	// tokens). Used refresh
	// tokens are kept until they expire, so reuse detection keeps working for
	// a token family's whole life. It returns how many rows it removed.
	DeleteExpired(ctx context.Context, before time.Time) (int64, error)

	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error

	// Close releases the backend's resources.
	Close() error
}

// FositeStore is everything fosite's composed handlers need.
//
// fosite-specific rules that every backend must follow (the conformance suite
// checks each one):
//   - Get*Session unmarshals the stored session into the session argument (a
//     prototype; it may be nil, as fosite's revocation passes nil) and
//     rehydrates the client through GetClient.
//   - GetAuthorizeCodeSession of an invalidated code returns the request
//     together with fosite.ErrInvalidatedAuthorizeCode.
//   - InvalidateAuthorizeCodeSession is a conditional update: invalidating a
//     code that is no longer active returns fosite.ErrInvalidatedAuthorizeCode,
//     so two parallel exchanges cannot both succeed.
//   - GetRefreshTokenSession of a rotated or revoked token returns the request
//     together with fosite.ErrInactiveToken.
//   - RotateRefreshToken deactivates exactly the given refresh token (only if
//     it is still active: zero rows changed returns ErrNotFound, which fosite
//     turns into "retry") and deletes the access tokens of the request ID.
//   - Delete and revoke calls are idempotent: nothing to delete is not an
//     error.
//   - GetPARSession refuses (ErrNotFound) a request whose
//     fosite.PushedAuthorizeRequestContext expiry has passed.
//   - The OpenID Connect session is keyed by the raw authorization code;
//     backends must hash it before using it as a key.
//   - SetClientAssertionJWT fails with fosite.ErrJTIKnown on a duplicate,
//     atomically.
type FositeStore interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	openid.OpenIDConnectRequestStorage
	pkce.PKCERequestStorage
	fosite.PARStorage
}

// ClientStore manages the client registry.
type ClientStore interface {
	// Client returns the client with the given ID, or ErrNotFound.
	// (GetClient, from fosite.ClientManager, returns the same record as a
	// fosite.Client. A SQL backend answers it from a cache of at most a
	// second: a change made through another replica reaches this one
	// within that time; its own changes, at once.)
	Client(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
	// CreateClient stores a new client; ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// UpdateClient applies update to the stored client atomically. update may
	// run more than once and must be pure. The ID cannot change.
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) error
	// DeleteClient removes a client, and its dynamic registration if it
	// has one (RegistrationStore); ErrNotFound if there is none.
	DeleteClient(ctx context.Context, id string) error
}

// KeyStore persists signing keys. The private part arrives encrypted; the
// store never interprets it.
type KeyStore interface {
	// CreateSigningKey stores a new key; ErrAlreadyExists if the kid is taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns every stored key, oldest first (by CreatedAt, then
	// KID).
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKey removes a key; nothing to delete is not an error.
	DeleteSigningKey(ctx context.Context, kid string) error
}

// WeChatStore keeps what wxoidc holds of WeChat's secrets: each user's
// current session key per app, and the shared server access token per app.
// Both arrive encrypted by the caller.
type WeChatStore interface {
	// PutSessionKey stores k, replacing the key for (k.Subject, k.AppID).
	PutSessionKey(ctx context.Context, k SessionKey) error
	// SessionKey returns the current key for (subject, appID), or
	// ErrNotFound.
	SessionKey(ctx context.Context, subject, appID string) (SessionKey, error)

	// ServerToken returns the stored server access token of appID, or
	// ErrNotFound.
	ServerToken(ctx context.Context, appID string) (ServerToken, error)
	// SaveServerToken stores t unless the stored token for t.AppID expires
	// at the same time or later (compare-and-swap on ExpiresAt), so a stale
	// token never overwrites a fresh one. It returns the token stored after
	// the call: t, or the fresher one that won.
	SaveServerToken(ctx context.Context, t ServerToken) (ServerToken, error)
	// DeleteServerToken removes the token of appID only if its ExpiresAt
	// still equals expiresAt (it is the one the caller saw fail); otherwise
	// it does nothing.
	DeleteServerToken(ctx context.Context, appID string, expiresAt time.Time) error
}

// RateStore keeps rate limits that hold across every replica on the same
// database.
type RateStore interface {
	// TakeRate takes n requests at now from the limit name, which admits
	// rate requests per second on average and bursts of burst (the generic
	// cell rate algorithm, equivalent to a token bucket that starts full).
	// It takes all n or none and reports which; n > burst is never
	// admitted. A limit that has refilled completely is forgotten by
	// DeleteExpired.
	TakeRate(ctx context.Context, name string, n int, rate float64, burst int, now time.Time) (bool, error)
}

// LeaseStore gives out named, time-limited locks shared by every replica on
// the same database (one WeChat token refresher, one janitor, one key
// rotator at a time).
type LeaseStore interface {
	// AcquireLease takes the lease name for holder until now+ttl. It
	// succeeds if the lease is free, expired, or already held by holder
	// (which extends it), and reports false otherwise.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease frees the lease if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}
