package storage

import (
	"context"
	"crypto/rand"
	"strings"
	"time"
)

// DeviceAuth is a pending authorization that a person approves somewhere
// else: an RFC 8628 device authorization (a TV, a CLI), or a desktop login
// page waiting for the person to scan a code with their phone (a Mini
// Program code, an official-account QR code). The device or page holds
// the secret DeviceCode and polls; the person is shown the UserCode (typed,
// or carried inside the scanned code) and approves or denies.
type DeviceAuth struct {
	// DeviceCode is the secret the polling side holds. Backends store only
	// its SHA-256 and return it empty.
	DeviceCode string
	// UserCode is the short code in its stored form (NormalizeUserCode:
	// eight letters, no dash); unique among stored authorizations.
	UserCode string
	// Kind says which flow created it ("device", "scan", "official", …);
	// the store does not interpret it.
	Kind string
	// ClientID is the client that asked; Scopes what it asked for.
	ClientID string
	Scopes   []string
	// Data is what the creating flow needs to finish (e.g. the
	// authorization request a waiting login page resumes); opaque here.
	Data []byte

	// Status is DevicePending until DecideDeviceAuth, then DeviceApproved
	// or DeviceDenied; an approved authorization becomes DeviceRedeemed at
	// the poll that collects it.
	Status DeviceStatus
	// Subject, AuthTime and AMR say who approved, when they authenticated
	// and how (set with DeviceApproved).
	Subject  string
	AuthTime time.Time
	AMR      []string
	// Reason says why a DeviceDenied authorization was denied when the
	// denier gave one (DeviceDecision.Reason); empty otherwise.
	Reason string

	CreatedAt time.Time
	// ExpiresAt ends the authorization: no decision and no redemption
	// after it. Backends keep the record DeviceRetention longer, so late
	// polls still learn that it expired.
	ExpiresAt time.Time
	// Interval is the least time between two polls (RFC 8628 §3.5); a poll
	// that comes sooner grows it by DeviceSlowDownStep.
	Interval time.Duration
	// PolledAt is the time of the last poll; zero before the first.
	PolledAt time.Time
	// SeenAt is when the waiting side (a desktop login page) last showed
	// it is still there (CreateDeviceAuth stores the given value;
	// TouchDeviceAuth moves it); zero when it said it left, or for a flow
	// that does not track it. DeviceDecision.SeenSince approves only a
	// login whose page was seen recently.
	SeenAt time.Time
}

// DeviceStatus is the state of a DeviceAuth.
type DeviceStatus string

// The states of a DeviceAuth.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceRedeemed DeviceStatus = "redeemed"
)

// PollOutcome is what one PollDeviceAuth call found.
type PollOutcome string

// The outcomes of a poll, in the order PollDeviceAuth checks them.
const (
	// PollExpired: the authorization has expired (whatever its state).
	PollExpired PollOutcome = "expired"
	// PollRedeemed: it was approved, and this poll collects it: the
	// caller issues what was approved. Exactly one poll gets this.
	PollRedeemed PollOutcome = "redeemed"
	// PollUsed: an earlier poll collected it.
	PollUsed PollOutcome = "used"
	// PollDenied: the person denied it.
	PollDenied PollOutcome = "denied"
	// PollSlowDown: still pending, and this poll came less than Interval
	// (minus DevicePollSlack) after the previous one; Interval has grown
	// by DeviceSlowDownStep.
	PollSlowDown PollOutcome = "slow_down"
	// PollPending: still pending.
	PollPending PollOutcome = "pending"
)

// Constants of the device store's contract.
const (
	// DeviceSlowDownStep is how much a too-early poll grows the interval
	// (RFC 8628 §3.5: 5 seconds).
	DeviceSlowDownStep = 5 * time.Second
	// DevicePollSlack forgives a poll this much earlier than Interval
	// allows: clocks of replicas and network delays jitter.
	DevicePollSlack = 500 * time.Millisecond
	// DeviceRetention is how long DeleteExpired keeps an expired
	// authorization, so that its poller is told expired_token rather than
	// invalid_grant.
	DeviceRetention = time.Hour
)

// DeviceDecision is a person's answer to a pending DeviceAuth.
type DeviceDecision struct {
	// Approve approves; false denies.
	Approve bool
	// Subject, AuthTime and AMR describe who approved (ignored on deny).
	Subject  string
	AuthTime time.Time
	AMR      []string
	// Reason, on deny, says why for the polling side (e.g. "no_account":
	// the login method found no account the person may use); ignored on
	// approve. A short token, never personal data.
	Reason string
	// Now is the time of the decision; an authorization that expired by
	// then cannot be decided.
	Now time.Time
	// SeenSince, when set, lets an approval through only if the waiting
	// side was seen at or after it (SeenAt >= SeenSince): a login whose
	// page is gone is not approved for nobody. Ignored on deny.
	SeenSince time.Time
}

// DeviceAuthStore keeps pending authorizations (DeviceAuth) so that any
// replica can create, decide and redeem them.
//
// Device codes are secrets; backends MUST store only their hash.
type DeviceAuthStore interface {
	// CreateDeviceAuth stores d (Status pending, PolledAt zero, SeenAt as
	// given);
	// ErrAlreadyExists if its device code or user code is taken (the
	// caller draws a new user code and tries again).
	CreateDeviceAuth(ctx context.Context, d DeviceAuth) error
	// DeviceAuthByUserCode returns the authorization with the given
	// (normalized) user code, expired or not, or ErrNotFound.
	DeviceAuthByUserCode(ctx context.Context, userCode string) (DeviceAuth, error)
	// DeviceAuth returns the authorization with the given device code,
	// expired or not, or ErrNotFound. It is one read.
	DeviceAuth(ctx context.Context, deviceCode string) (DeviceAuth, error)
	// DecideDeviceAuth records a decision on the authorization with the
	// given user code, in one conditional update: only a pending, unexpired
	// authorization can be decided, so of two concurrent decisions exactly
	// one wins. It returns the authorization after the call; if it was not
	// pending or had expired, or an approval's SeenSince found its page
	// gone (the record is still pending, SeenAt before SeenSince), the
	// returned record shows why and the error is ErrConflict. An unknown
	// user code is ErrNotFound.
	DecideDeviceAuth(ctx context.Context, userCode string, dec DeviceDecision) (DeviceAuth, error)
	// TouchDeviceAuth sets SeenAt of the authorization with the given
	// device code to at (zero: the waiting side left), whatever its state,
	// in one statement. An unknown device code is ErrNotFound.
	TouchDeviceAuth(ctx context.Context, deviceCode string, at time.Time) error
	// PollDeviceAuth records a poll at now by the holder of deviceCode, a
	// client clientID, and says what it found, in ONE statement (a poll
	// never costs more than one round trip). It moves an approved,
	// unexpired authorization to redeemed and answers PollRedeemed to
	// exactly one poll across every replica; it grows the interval of a
	// too-early poll on a pending authorization. A device code that is
	// unknown or belongs to another client is ErrNotFound, and changes
	// nothing.
	PollDeviceAuth(ctx context.Context, deviceCode, clientID string, now time.Time) (DeviceAuth, PollOutcome, error)
}

// UserCodeAlphabet is the alphabet of user codes: consonants only (no
// vowels, so no words; no look-alikes such as 0/O or 1/I/L — there are no
// digits, and no I or O), as RFC 8628 §6.1 suggests. Twenty letters, eight
// of them: 20^8 ≈ 2^34.6 codes.
const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLength is the number of letters in a user code.
const UserCodeLength = 8

// NewUserCode draws a random user code in its stored form (eight letters;
// FormatUserCode adds the dash).
func NewUserCode() string {
	b := make([]byte, UserCodeLength)
	rand.Read(b)
	// 256 = 12·20 + 16: reject the top 16 values to stay uniform.
	out := make([]byte, 0, UserCodeLength)
	for len(out) < UserCodeLength {
		for _, c := range b {
			if c < 240 && len(out) < UserCodeLength {
				out = append(out, UserCodeAlphabet[int(c)%len(UserCodeAlphabet)])
			}
		}
		rand.Read(b)
	}
	return string(out)
}

// NormalizeUserCode turns what a person typed (any case, dashes, spaces)
// into the stored form, and reports whether it can be a user code at all.
func NormalizeUserCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r < 128 && strings.IndexByte(UserCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
		if b.Len() > UserCodeLength {
			return "", false
		}
	}
	if b.Len() != UserCodeLength {
		return "", false
	}
	return b.String(), true
}

// FormatUserCode shows a stored user code the way people read it:
// XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}
