package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Registration policies (users.registration, SPEC §10).
const (
	// RegistrationOpen (the default): a new WeChat identity creates a
	// user.
	RegistrationOpen = "open"
	// RegistrationExisting is login-only: a new identity links only to a
	// user that exists, through a unionid already linked or through a
	// verified phone number that matches exactly one enabled user.
	RegistrationExisting = "existing"
)

// Errors of [Users.SignIn] that a login method turns into its own answer.
var (
	// ErrUserDisabled: the person's account is disabled.
	ErrUserDisabled = errors.New("provider: the account is disabled")
	// ErrPhoneRequired: registration is "existing", the identity is new and
	// no verified phone number came with it to find the account by.
	ErrPhoneRequired = errors.New("provider: a verified phone number is required to find the account")
	// ErrNoAccount: registration is "existing" and no account matches the
	// identity or its phone number.
	ErrNoAccount = errors.New("provider: no account matches this WeChat identity")
)

// Users is the one way every login method finds or creates the user behind
// a WeChat identity: the Mini Program grant, QR login, in-WeChat OAuth and
// any method to come call [Users.SignIn]. It applies the registration
// policy, refuses disabled users, gives new users a subject in the one
// format wxoidc uses ([NewSubject]), keeps last-login times and records
// the audit events (login, login_failed, user_created, identity_linked,
// phone_bound). A Users is safe for concurrent use; build it once and share
// it between the provider and the login methods.
type Users struct {
	// Storage keeps the users. Required.
	Storage storage.Storage
	// Registration is RegistrationOpen (also when empty) or
	// RegistrationExisting.
	Registration string
	// Audit records the events; nil means one on Storage that logs
	// nothing.
	Audit *Audit
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// DeleteMaxAge is how recent a sign-in must be for the person to
	// erase their own account (POST /account/delete, the account page's
	// Delete my account); zero means DefaultDeleteMaxAge.
	DeleteMaxAge time.Duration
}

// DefaultDeleteMaxAge is Users.DeleteMaxAge when unset.
const DefaultDeleteMaxAge = 10 * time.Minute

// RecentSignIn returns how recent a sign-in must be for the person to
// erase their own account (Users.DeleteMaxAge, or its default). A nil
// Users has the default.
func (u *Users) RecentSignIn() time.Duration {
	if u == nil || u.DeleteMaxAge <= 0 {
		return DefaultDeleteMaxAge
	}
	return u.DeleteMaxAge
}

// SignIn is one login for [Users.SignIn]: the WeChat identity WeChat
// vouched for and what came with it.
type SignIn struct {
	AppID   string
	OpenID  string
	UnionID string // empty when WeChat gave none
	Kind    wechat.AppKind
	// Name and Picture, when set, update the user's profile (web login's
	// nickname and head image).
	Name, Picture string
	// PhoneNumber is a number WeChat verified for this person (E.164),
	// from a phone code; empty if none. In "existing" registration it
	// finds the account of a new identity.
	PhoneNumber string
	// ClientID and IP (the request's) go into the events.
	ClientID, IP string
	// Method names the login method in the login event: one of
	// LoginMethods.
	Method string
}

// The login methods: the "method" of each login event (and login_failed
// event) names the way the person signed in. The admin console charts
// sign-ins by them.
const (
	// MethodMiniProgram is the Mini Program grant (wx.login's js_code).
	MethodMiniProgram = "wechat_jscode"
	// MethodQR is WeChat web login on a website: the QR code of a
	// website app, scanned with WeChat.
	MethodQR = "wechat_qr"
	// MethodOAuth is WeChat web login inside WeChat: the OAuth of an
	// official account's web page.
	MethodOAuth = "wechat_oauth"
	// MethodFollow is signing in by following (or scanning the code of)
	// an official account.
	MethodFollow = "wechat_follow"
	// MethodScan is a desktop signed in by scanning a Mini Program code
	// with a signed-in Mini Program.
	MethodScan = "scan"
	// MethodDevice is a device (RFC 8628) approved by a signed-in person.
	MethodDevice = "device"
)

// LoginMethods lists every login method, in the order the console shows
// them.
var LoginMethods = []string{MethodMiniProgram, MethodQR, MethodOAuth, MethodFollow, MethodScan, MethodDevice}

// CheckRegistration reports whether policy is a registration policy.
func CheckRegistration(policy string) error {
	switch policy {
	case "", RegistrationOpen, RegistrationExisting:
		return nil
	}
	return fmt.Errorf("%q is not %q or %q", policy, RegistrationOpen, RegistrationExisting)
}

func (u *Users) now() time.Time {
	if u.Now != nil {
		return u.Now().UTC()
	}
	return time.Now().UTC()
}

func (u *Users) audit() *Audit {
	if u.Audit != nil {
		return u.Audit
	}
	return &Audit{Storage: u.Storage}
}

// SignIn finds or creates the user behind in's identity and records the
// login. It returns ErrUserDisabled, ErrPhoneRequired or ErrNoAccount (each
// recorded as a login_failed event) when the person may not sign in, and a
// storage error otherwise.
func (u *Users) SignIn(ctx context.Context, in SignIn) (storage.User, error) {
	return u.SignInWith(ctx, in, nil)
}

// SignInWith is SignIn that also runs also, when not nil, with the user
// in the transaction that records the login: a login method's own writes
// (say, the browser session it starts) commit together with the login, in
// one write. When also fails, nothing of the login is recorded and its
// error is returned.
func (u *Users) SignInWith(ctx context.Context, in SignIn, also func(ctx context.Context, user storage.User) error) (storage.User, error) {
	user, login, err := u.find(ctx, in)
	if err != nil {
		return storage.User{}, err
	}
	e := loginEventOf(&login)
	err = storage.InTx(ctx, u.Storage, func(ctx context.Context) error {
		if err := u.Storage.RecordLogin(ctx, login); err != nil {
			return err
		}
		if also != nil {
			return also(ctx, user)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrUserDisabled) {
			u.refused(ctx, in, user.Subject, "disabled")
			return storage.User{}, ErrUserDisabled
		}
		return storage.User{}, err
	}
	u.audit().logged(ctx, e)
	return user, nil
}

// RecordLogin records the login of a user who came in without a new WeChat
// identity — a desktop or a device that a signed-in Mini Program or browser
// approved (MethodScan, MethodDevice) — with its last-login time and login
// event. It returns ErrUserDisabled, recording login_failed, when the user
// is disabled or gone.
func (u *Users) RecordLogin(ctx context.Context, l storage.Login) error {
	if l.At.IsZero() {
		l.At = u.now()
	}
	err := u.recordLogin(ctx, l)
	if errors.Is(err, storage.ErrUserDisabled) || errors.Is(err, storage.ErrNotFound) {
		method, _ := l.Details["method"].(string)
		u.refused(ctx, SignIn{ClientID: l.ClientID, IP: l.IP, Method: method, AppID: l.AppID}, l.Subject, "disabled")
		return ErrUserDisabled
	}
	return err
}

// find is SignIn without recording the login: it returns the login for the
// caller to record with RecordLogin, in the transaction that issues the
// tokens (the Mini Program grant), so that a login costs no extra write.
func (u *Users) find(ctx context.Context, in SignIn) (storage.User, storage.Login, error) {
	now := u.now()
	req := storage.LinkRequest{
		AppID: in.AppID, OpenID: in.OpenID, UnionID: in.UnionID, Kind: string(in.Kind),
		Name: in.Name, Picture: in.Picture, PhoneNumber: in.PhoneNumber,
		ClientID: in.ClientID, IP: in.IP, Now: now,
	}
	existing := u.Registration == RegistrationExisting
	if !existing {
		req.NewSubject = NewSubject()
	}
	res, err := u.Storage.LinkIdentity(ctx, req)
	switch {
	case errors.Is(err, storage.ErrNotFound) && existing && in.PhoneNumber == "":
		u.refused(ctx, in, "", "phone_required")
		return storage.User{}, storage.Login{}, ErrPhoneRequired
	case errors.Is(err, storage.ErrNotFound) && existing:
		u.refused(ctx, in, "", "no_account")
		return storage.User{}, storage.Login{}, ErrNoAccount
	case err != nil:
		return storage.User{}, storage.Login{}, err
	}
	u.audit().logged(ctx, res.Events...)
	if res.User.Disabled {
		u.refused(ctx, in, res.User.Subject, "disabled")
		return storage.User{}, storage.Login{}, ErrUserDisabled
	}
	details := map[string]any{"appid": in.AppID}
	if in.Method != "" {
		details["method"] = in.Method
	}
	return res.User, storage.Login{
		Subject: res.User.Subject, AppID: in.AppID, OpenID: in.OpenID, At: now,
		ClientID: in.ClientID, IP: in.IP, Details: details,
	}, nil
}

// recordLogin records l, in ctx's transaction if it has one, and logs the
// event once it is stored (or, in a transaction, written).
func (u *Users) recordLogin(ctx context.Context, l storage.Login) error {
	e := loginEventOf(&l)
	if err := u.Storage.RecordLogin(ctx, l); err != nil {
		return err
	}
	u.audit().logged(ctx, e)
	return nil
}

// refused records a login_failed event; a failure to store it is logged,
// not returned (the login fails either way).
func (u *Users) refused(ctx context.Context, in SignIn, subject, reason string) {
	details := map[string]any{"appid": in.AppID, "kind": string(in.Kind), "reason": reason}
	if in.Method != "" {
		details["method"] = in.Method
	}
	u.audit().Record(ctx, storage.Event{Type: storage.EventLoginFailed, Subject: subject, ClientID: in.ClientID, IP: in.IP, Details: details})
}

// NewSubject returns a fresh subject in the one format wxoidc gives every
// new user, whichever way they came in: 32 lower-case hex characters (safe
// in URLs, file names and case-insensitive databases) holding a version 7
// UUID: the time in Unix milliseconds (48 bits, big-endian), the version
// (7), 12 bits of the fraction of the millisecond (google/uuid makes the
// first 64 bits strictly increase within a process), the variant and 62
// random bits.
//
// New subjects therefore sort after the ones made before them, and a
// sign-up's inserts into the indexes keyed by subject (users, identities,
// events, the token tables, browser sessions) land next to the previous
// sign-up's, in pages that are in the cache and already logged since the
// last checkpoint, instead of in a random leaf of an index of millions of
// rows (a page read and a full-page image in the WAL per index:
// docs/scale.md). Subjects minted before (128 random bits in the same 32
// hex characters, and 22 base64url characters for early Mini Program
// users) stay valid; the new ones, which for years begin with the same few
// hex digits (01a from August 2026 to October 2028), sit among them in one
// place of each index and grow there.
//
// This is acceptable under SPEC §5 (an opaque, stable sub): the format is
// unchanged to a relying party (32 hex characters, which it must treat as
// opaque), a subject stays fixed for the user's life and is never reused
// (no two in one process share their first 64 bits, two replicas would
// have to draw the same 62 random bits in the same 256 ns, and the users
// table's primary key refuses a clash). What a subject now reveals is when
// the account was created, to the millisecond: a relying party that sees
// the sub at sign-up (the common case) learns that anyway; one that meets
// an older user learns the account's age, which we judge harmless (no
// person, app, identity or login is in it, and the admin API shows
// created_at to operators).
func NewSubject() string {
	id, err := uuid.NewV7()
	if err != nil { // no randomness to be had: 128 random bits, as before
		b := make([]byte, 16)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(id[:])
}

// Audit records security events (SPEC §10): each in storage, in the same
// transaction as the change it records, and as one log line (a JSON line
// when the logger writes JSON). An event never holds a secret, a token, a
// code or a session key, nor personal data other than the pseudonymous
// subject and the request's IP address. An Audit is safe for concurrent
// use.
type Audit struct {
	// Storage keeps the events. Required.
	Storage storage.Storage
	// Logger receives one line per event (message "audit event"); nil
	// logs nothing.
	Logger *slog.Logger
}

// Record stores events on their own (in ctx's transaction, if it has
// one) and logs them. Times and IDs left empty are filled in. A failure
// to store is logged as well as returned.
func (a *Audit) Record(ctx context.Context, events ...storage.Event) error {
	events = prepare(events)
	if err := a.Storage.AppendEvents(ctx, events...); err != nil {
		if a.Logger != nil {
			a.Logger.ErrorContext(ctx, "audit event not stored", "error", err)
		}
		return err
	}
	a.logged(ctx, events...)
	return nil
}

// RecordWith runs change and stores events in one transaction: both are
// kept, or, when change (or the commit) fails, neither. Use it for every
// change that has an event, e.g.
//
//	err := audit.RecordWith(ctx, func(ctx context.Context) error {
//		return store.SetUserDisabled(ctx, sub, true)
//	}, storage.Event{Type: storage.EventUserDisabled, Subject: sub})
//
// change must make its storage calls with the context it is given.
func (a *Audit) RecordWith(ctx context.Context, change func(ctx context.Context) error, events ...storage.Event) error {
	return a.RecordAfter(ctx, func(ctx context.Context) ([]storage.Event, error) {
		return events, change(ctx)
	})
}

// RecordAfter is RecordWith for a change whose events are known only once
// it is made (the kid of a new signing key, whether an update issued a
// secret): change returns them, and they are stored in its transaction;
// when change fails they are ignored and nothing is kept. change must
// make its storage calls with the context it is given.
//
// On a backend without transactions (the memory store) the change is
// applied as it is made and the events stored after it (see
// storage.InTx).
func (a *Audit) RecordAfter(ctx context.Context, change func(ctx context.Context) ([]storage.Event, error)) error {
	var events []storage.Event
	err := storage.InTx(ctx, a.Storage, func(ctx context.Context) error {
		evs, err := change(ctx)
		if err != nil {
			return err
		}
		events = prepare(evs)
		return a.Storage.AppendEvents(ctx, events...)
	})
	if err != nil {
		return err
	}
	a.logged(ctx, events...)
	return nil
}

func prepare(events []storage.Event) []storage.Event {
	out := make([]storage.Event, len(events))
	now := time.Now()
	for i, e := range events {
		out[i] = storage.PrepareEvent(e, now)
	}
	return out
}

// logged writes the log line of each event already stored.
func (a *Audit) logged(ctx context.Context, events ...storage.Event) {
	if a.Logger == nil {
		return
	}
	for _, e := range events {
		a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit event",
			slog.String("event_id", e.ID), slog.Time("event_time", e.Time), slog.String("type", e.Type),
			slog.String("sub", e.Subject), slog.String("client_id", e.ClientID), slog.String("ip", e.IP),
			slog.Any("details", e.Details))
	}
}

// loginEventOf returns the login event RecordLogin stores for l, with l's
// event ID (set when empty) so that the log line names the stored event.
func loginEventOf(l *storage.Login) storage.Event {
	e := storage.PrepareEvent(storage.Event{ID: l.EventID, Time: l.At, Type: storage.EventLogin, Subject: l.Subject, ClientID: l.ClientID, IP: l.IP, Details: l.Details}, l.At)
	l.EventID, l.At = e.ID, e.Time
	return e
}
