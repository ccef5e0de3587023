package storage

import (
	"context"
	"time"
)

// LoginStateStore keeps the short-lived state of a browser login in
// progress (a round trip to WeChat, a consent form), so that any replica
// can finish what another one started.
//
// IDs are secrets held by the browser; backends MUST store only a hash of
// them (SHA-256) and never log them. A backend may commit these writes
// without waiting for them to be durable (PostgreSQL: synchronous_commit
// off for the statement): a database crash may then lose the last of them,
// and the person starts the sign-in again.
type LoginStateStore interface {
	// CreateLoginState stores data under id until expiresAt;
	// ErrAlreadyExists if id is taken.
	CreateLoginState(ctx context.Context, id string, data []byte, expiresAt time.Time) error
	// ConsumeLoginState returns the data stored under id and deletes it, in
	// one atomic step: of two concurrent calls at most one gets the data.
	// An unknown, consumed or expired id is ErrNotFound.
	ConsumeLoginState(ctx context.Context, id string) ([]byte, error)
	// AdmitLoginState takes one request at now from each of limits in
	// turn, as RateStore.TakeRate with n = 1 does, and, if every one admits
	// it, stores data under id until expiresAt as CreateLoginState does:
	// all in one step (one statement on PostgreSQL). A limit that refuses
	// ends it there: the limits before it stay taken, those after it are
	// not asked, nothing is stored, and ok is false.
	AdmitLoginState(ctx context.Context, id string, data []byte, expiresAt time.Time, limits []RateTake, now time.Time) (ok bool, err error)
	// AdvanceLoginState consumes id as ConsumeLoginState does and returns
	// its data; in the same step (one statement on PostgreSQL) it stores
	// under newID until expiresAt that data with its last byte replaced by
	// tail. For data that is a JSON object and a tail such as
	// `,"step":"next"}` that adds members to it (encoding/json lets a later
	// duplicate member win), the next step's state is the consumed one
	// changed, without a round trip to read it first. Nothing is stored
	// when id is not found; newID taken is ErrAlreadyExists, and then id is
	// not consumed.
	AdvanceLoginState(ctx context.Context, id, newID string, tail []byte, expiresAt time.Time) ([]byte, error)
}

// RateTake names a limit that AdmitLoginState takes a request from, with
// the rate (per second) and burst of RateStore.TakeRate.
type RateTake struct {
	Name  string
	Rate  float64
	Burst int
}

// BrowserSession is a person's login at the provider, held by a browser in
// a cookie.
type BrowserSession struct {
	// ID is the cookie value; backends key the session by its hash.
	ID        string
	Subject   string
	AuthTime  time.Time // when the person authenticated
	ExpiresAt time.Time
	// AMR says how the person signed in (RFC 8176 values or wxoidc's own,
	// e.g. "wechat", "miniprogram"); nil when not recorded.
	AMR []string
}

// BrowserSessionStore keeps login sessions.
//
// Session IDs are secrets; backends MUST store only a hash of them.
type BrowserSessionStore interface {
	// CreateBrowserSession stores s; ErrAlreadyExists if its ID is taken.
	CreateBrowserSession(ctx context.Context, s BrowserSession) error
	// BrowserSession returns the session with the given ID, or ErrNotFound
	// if there is none or it has expired.
	BrowserSession(ctx context.Context, id string) (BrowserSession, error)
	// BrowserSessionUser returns the session with the given ID and its
	// user, read together (one round trip on the SQL backends), or
	// ErrNotFound if there is no such unexpired session or its user is
	// gone.
	BrowserSessionUser(ctx context.Context, id string) (BrowserSession, User, error)
	// UserBrowserSessions returns the unexpired sessions of subject, oldest
	// login first, with ID left empty (only its hash is stored).
	UserBrowserSessions(ctx context.Context, subject string) ([]BrowserSession, error)
	// DeleteBrowserSession removes a session; nothing to delete is not an
	// error.
	DeleteBrowserSession(ctx context.Context, id string) error
}

// Consent is a person's standing decision to let a client have scopes.
type Consent struct {
	Subject   string
	ClientID  string
	Scopes    []string // sorted, no duplicates
	GrantedAt time.Time
}

// ConsentStore keeps consent decisions per (subject, client).
type ConsentStore interface {
	// Consent returns the consent of subject to clientID, or ErrNotFound.
	Consent(ctx context.Context, subject, clientID string) (Consent, error)
	// Consents returns every consent of subject, ordered by ClientID.
	Consents(ctx context.Context, subject string) ([]Consent, error)
	// PutConsent stores c, replacing the consent for (c.Subject,
	// c.ClientID).
	PutConsent(ctx context.Context, c Consent) error
	// DeleteConsent withdraws a consent and, atomically with it, revokes
	// what the client holds for the subject: its access tokens are deleted
	// and its refresh tokens and unused authorization codes deactivated.
	// (JWT access tokens already handed out stay verifiable offline until
	// they expire.) Nothing to delete is not an error.
	DeleteConsent(ctx context.Context, subject, clientID string) error
}
