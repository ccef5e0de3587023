package storage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fositestorage "github.com/ory/fosite/storage"
)

// ErrUserDisabled reports that a login was refused because its user is
// disabled (or was deleted meanwhile).
var ErrUserDisabled = errors.New("storage: user disabled")

// UserStore manages provider users and the WeChat identities linked to
// them.
//
// Every method takes part in the transaction of its context (see InTx), so
// a caller can record an event in the same transaction as the change it
// records. Other packages that keep per-user data must add it to
// DeleteUser (erasure) and, for sessions and tokens, to EndUserSessions.
type UserStore interface {
	// LinkIdentity finds or creates the user behind a WeChat identity, in
	// one atomic step. The rules, in order:
	//   1. (AppID, OpenID) is already linked: that user. If the identity
	//      had no UnionID and the request brings one that no other user
	//      holds, the UnionID is attached to the identity and to that user.
	//   2. UnionID is non-empty and already linked to a user: a new
	//      identity (AppID, OpenID) is linked to that user.
	//   3. NewSubject is empty and PhoneNumber is set: a new identity is
	//      linked to the one enabled user with that phone number and no
	//      identity of AppID yet.
	//   4. NewSubject is set: a new user with that subject is created with
	//      the identity (and UnionID, if any).
	//   5. Otherwise ErrNotFound, and nothing changes.
	// A user found disabled is returned as it is (User.Disabled), and
	// nothing changes. Otherwise non-empty Name, Picture and PhoneNumber
	// are stored on the user (the number verified). Concurrent calls for
	// the same person create exactly one user. The call records, in the
	// same transaction, user_created, identity_linked and phone_bound
	// events as they happen (returned in LinkResult.Events); it does not
	// record the login itself (RecordLogin does).
	LinkIdentity(ctx context.Context, req LinkRequest) (LinkResult, error)
	// RecordLogin records a successful login: the user's and the
	// identity's (if AppID is set) last login time, and the login event.
	// It fails with ErrUserDisabled, writing nothing, if the user is
	// disabled or gone at that moment. In a transaction begun by BeginTX
	// it is queued like the token writes, so a Mini Program login stays
	// one write round trip: the tokens commit only for an enabled user.
	RecordLogin(ctx context.Context, l Login) error
	// CreateUser stores a new user (pre-provisioning); ErrAlreadyExists if
	// the subject, the external ID or the unionid is taken. Zero
	// CreatedAt and UpdatedAt are set to the current time.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with the given subject, or ErrNotFound.
	User(ctx context.Context, subject string) (User, error)
	// UpdateUser applies update to the stored user atomically; update may
	// run more than once and must be pure. The subject, CreatedAt,
	// LastLoginAt and Disabled cannot change through it (see
	// SetUserDisabled). A UnionID or ExternalID held by another user
	// fails with ErrAlreadyExists. An unchanged UpdatedAt is set to the
	// current time.
	UpdateUser(ctx context.Context, subject string, update func(User) (User, error)) error
	// SetUserDisabled disables or enables a user. Disabling also ends
	// every session of the user, as EndUserSessions does, in the same
	// transaction. ErrNotFound if there is no such user.
	SetUserDisabled(ctx context.Context, subject string, disabled bool) error
	// EndUserSessions signs a user out everywhere: their browser sessions
	// and access tokens are deleted, their refresh tokens and unused
	// authorization codes deactivated (so a later use is refused and,
	// for refresh tokens, detected as reuse). Nothing to end is not an
	// error.
	EndUserSessions(ctx context.Context, subject string) error
	// DeleteUser erases a user in one transaction: the user, their
	// identities, WeChat session keys, tokens, codes, PKCE, OpenID Connect
	// and PAR requests, the kept answers of their refreshes
	// (RefreshGraceStore), consents, browser sessions, device and scan
	// logins, the official-account pushes their identities sent
	// (PushEvent.OpenID) and the rate limits named after them (a name
	// ending in "/" + subject). Events keep only the subject, and the
	// back-channel logouts it queues only the subject and session ids.
	// ErrNotFound if there is no such user.
	DeleteUser(ctx context.Context, subject string) error
	// SearchUsers returns a page of the users matching q, ordered by
	// subject, and the page token of the next page ("" after the last).
	// Paging is by key (the last subject seen), so a user that exists
	// through the whole walk is seen exactly once however many users are
	// created or deleted meanwhile.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, string, error)
	// Identity returns the identity linked to (appID, openID), or
	// ErrNotFound.
	Identity(ctx context.Context, appID, openID string) (Identity, error)
	// Identities returns every identity linked to the subject, ordered by
	// AppID.
	Identities(ctx context.Context, subject string) ([]Identity, error)
	// IdentitiesOf returns the identities linked to each of the subjects
	// (a page of SearchUsers, at most MaxPageSize), keyed by subject and
	// each ordered by AppID, in one query rather than one per user.
	// Subjects with no identity, or no user, have no entry.
	IdentitiesOf(ctx context.Context, subjects []string) (map[string][]Identity, error)
	// UnlinkIdentity removes the subject's identity of appID, the WeChat
	// session key of that app and the pushes the identity sent
	// (PushEvent.OpenID); ErrNotFound if there is none. The
	// user's UnionID is cleared when no remaining identity carries it.
	UnlinkIdentity(ctx context.Context, subject, appID string) error
}

// Login is a successful login, for UserStore.RecordLogin.
type Login struct {
	Subject string
	// AppID and OpenID name the identity that signed in; empty for a login
	// that used none.
	AppID, OpenID string
	At            time.Time
	// ClientID and IP, and Details (never a secret), go into the login
	// event.
	ClientID string
	IP       string
	Details  map[string]any
	// EventID is the ID of the login event; empty means a new one.
	EventID string
}

// UserQuery selects users for UserStore.SearchUsers. Set filters must all
// match; an empty query matches every user.
type UserQuery struct {
	PhoneNumber string // exact, E.164
	OpenID      string // of any app
	UnionID     string
	ExternalID  string
	// Prefix matches users whose name or subject starts with it.
	Prefix string
	// Limit caps the page (1 to MaxPageSize; 0 means DefaultPageSize).
	Limit int
	// PageToken continues a walk: the token a previous page returned.
	PageToken string
}

// Page sizes of UserQuery and EventQuery.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// ErrBadPageToken reports a page token that no search returned.
var ErrBadPageToken = errors.New("storage: invalid page token")

// PageSize returns the effective page size of limit.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// UserPageToken encodes the position after subject as a page token.
func UserPageToken(subject string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("u:" + subject))
}

// ParseUserPageToken returns the subject a page token continues after
// ("" for an empty token).
func ParseUserPageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "u:") || len(b) == 2 {
		return "", ErrBadPageToken
	}
	return string(b[2:]), nil
}

// Event types (SPEC §10). Packages may record others.
const (
	EventLogin               = "login"
	EventLoginFailed         = "login_failed"
	EventUserCreated         = "user_created"
	EventIdentityLinked      = "identity_linked"
	EventIdentityUnlinked    = "identity_unlinked"
	EventUserUpdated         = "user_updated"
	EventUserDisabled        = "user_disabled"
	EventUserEnabled         = "user_enabled"
	EventUserDeleted         = "user_deleted"
	EventSessionsEnded       = "sessions_ended"
	EventPhoneBound          = "phone_bound"
	EventConsentGranted      = "consent_granted"
	EventConsentWithdrawn    = "consent_withdrawn"
	EventRefreshTokenReused  = "refresh_token_reused"
	EventClientCreated       = "client_created"
	EventClientUpdated       = "client_updated"
	EventClientDeleted       = "client_deleted"
	EventClientSecretRotated = "client_secret_rotated"
	EventKeyRotated          = "key_rotated"

	// Dynamic Client Registration: an operator issued or revoked an
	// initial access token. (Clients registered, updated or deleted
	// through it record client_created, client_updated and
	// client_deleted with details.registration "dynamic".)
	EventInitialAccessTokenCreated = "initial_access_token_created"
	EventInitialAccessTokenRevoked = "initial_access_token_revoked"
)

// Event is one entry of the audit trail. It never holds a secret, a token,
// a code or a session key, nor personal data beyond the pseudonymous
// subject and the client's IP address: erasing a user leaves their events
// naming only the subject.
type Event struct {
	// ID is unique; AppendEvents assigns one when empty.
	ID string
	// Time is when it happened; AppendEvents sets a zero Time to now.
	Time     time.Time
	Type     string
	Subject  string // the user concerned, if any
	ClientID string // the client concerned, if any
	IP       string // the address of the request, if any
	// Details are more facts about the event, as a JSON object.
	Details map[string]any
}

// EventStore keeps the audit trail.
type EventStore interface {
	// AppendEvents stores events, in the transaction of ctx if there is
	// one (see InTx): they commit or roll back with the change they
	// record.
	AppendEvents(ctx context.Context, events ...Event) error
	// Events returns a page of the events matching q, newest first, and
	// the page token of the next page ("" after the last).
	Events(ctx context.Context, q EventQuery) ([]Event, string, error)
	// DeleteEventsBefore removes the events older than before (the
	// retention the janitor enforces), and the daily roll-ups of the days
	// that ended by before (see Stats.RollUpEvents), and returns how many
	// events it removed.
	DeleteEventsBefore(ctx context.Context, before time.Time) (int64, error)
}

// EventQuery selects events for EventStore.Events. Set filters must all
// match.
type EventQuery struct {
	Subject  string
	ClientID string
	Type     string
	// Since and Until bound the event time: Since <= Time < Until.
	Since, Until time.Time
	Limit        int
	PageToken    string
}

// EventPageToken encodes the position after the event (time, id).
func EventPageToken(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e:" + strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

// ParseEventPageToken reverses EventPageToken; an empty token is the zero
// time and "".
func ParseEventPageToken(tok string) (time.Time, string, error) {
	if tok == "" {
		return time.Time{}, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	rest, ok := strings.CutPrefix(string(b), "e:")
	ts, id, ok2 := strings.Cut(rest, ":")
	us, err := strconv.ParseInt(ts, 10, 64)
	if !ok || !ok2 || err != nil || id == "" {
		return time.Time{}, "", ErrBadPageToken
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// InTx runs fn in one transaction of s: every storage call fn makes with
// the context it is given commits together, or not at all when fn (or the
// commit) fails. Inside a transaction begun by InTx, fn joins it.
//
// A backend without transactions (fosite's storage.Transactional; the
// memory store) applies fn's changes as they are made, but the events fn
// records are stored only once fn has succeeded (see DeferEvent), so a
// failed change records no event there either.
func InTx(ctx context.Context, s Storage, fn func(ctx context.Context) error) error {
	if InTransaction(ctx) {
		return fn(ctx)
	}
	tx, ok := s.(fositestorage.Transactional)
	if !ok {
		buf := &deferredEvents{}
		if err := fn(context.WithValue(ctx, inTxKey{}, buf)); err != nil {
			return err
		}
		return s.AppendEvents(ctx, buf.events...)
	}
	txCtx, err := tx.BeginTX(ctx)
	if err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	txCtx = context.WithValue(txCtx, inTxKey{}, (*deferredEvents)(nil))
	if err := fn(txCtx); err != nil {
		if rbErr := tx.Rollback(txCtx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return tx.Commit(txCtx)
}

type inTxKey struct{}

// deferredEvents are the events recorded in InTx on a backend without
// transactions.
type deferredEvents struct {
	mu     sync.Mutex
	events []Event
}

// InTransaction reports whether ctx carries a transaction begun by InTx.
func InTransaction(ctx context.Context) bool {
	_, ok := ctx.Value(inTxKey{}).(*deferredEvents)
	return ok
}

// DeferEvent is for backends without transactions: in InTx it keeps e to
// be stored when InTx's function succeeds and reports true; elsewhere it
// reports false and the backend stores e at once.
func DeferEvent(ctx context.Context, e Event) bool {
	buf, _ := ctx.Value(inTxKey{}).(*deferredEvents)
	if buf == nil {
		return false
	}
	buf.mu.Lock()
	buf.events = append(buf.events, e)
	buf.mu.Unlock()
	return true
}

// eventSeq orders the IDs of events made by this process in the same
// microsecond.
var eventSeq atomic.Uint32

// PrepareEvent returns e ready to store: now as its time when it has none
// (at microsecond precision, as stored), a new ID when it has none, and
// non-nil details. An ID is the time, a sequence number and random bits, in
// hex: events made by one process at the same time sort (newest first)
// in the order they were made.
func PrepareEvent(e Event, now time.Time) Event {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.ID == "" {
		b := make([]byte, 16)
		binary.BigEndian.PutUint64(b, uint64(e.Time.UnixMicro()))
		binary.BigEndian.PutUint32(b[8:], eventSeq.Add(1))
		rand.Read(b[12:])
		e.ID = hex.EncodeToString(b)
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return e
}
