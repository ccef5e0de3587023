package storage

import (
	"context"
	"time"
)

// LogoutJob is a back-channel logout (OpenID Connect Back-Channel Logout
// 1.0) waiting to be delivered to a client: the browser session sid of
// subject ended, or subject withdrew the client's consent.
type LogoutJob struct {
	ID       string
	ClientID string
	Subject  string
	SID      string
	// Attempts is how many deliveries failed so far.
	Attempts int
	// NextAttempt is when the job is due.
	NextAttempt time.Time
	// ExpiresAt is when delivery is given up.
	ExpiresAt time.Time
}

// EventBackchannelLogout is the audit event of a back-channel logout
// delivery attempt; its details say the outcome, the attempt's number and
// the relying party's HTTP status.
const EventBackchannelLogout = "backchannel_logout"

// LogoutRetryFor is how long a back-channel logout is retried before it
// is given up (LogoutJob.ExpiresAt, from when it is queued).
const LogoutRetryFor = 10 * time.Minute

// BackchannelStore keeps which clients took part in which browser session,
// and the logouts waiting for delivery, for every replica.
//
// UserStore's EndUserSessions, SetUserDisabled (disabling) and DeleteUser
// queue the subject's logouts (due at once, given up after LogoutRetryFor)
// in their own transaction, as EnqueueSubjectLogouts does.
type BackchannelStore interface {
	// AddSessionClient records that clientID received an ID token for
	// subject in the browser session sid, until expiresAt (the session's
	// end). Recording it again refreshes expiresAt.
	AddSessionClient(ctx context.Context, sid, subject, clientID string, expiresAt time.Time) error
	// EnqueueSessionLogouts queues, in one atomic step, a logout job for
	// every client recorded for sid and forgets those records; the jobs
	// are due at now and expire at giveUp. It returns how many it queued.
	EnqueueSessionLogouts(ctx context.Context, sid string, now, giveUp time.Time) (int, error)
	// EnqueueSubjectLogouts does the same for every session of subject,
	// only for clientID when it is not empty.
	EnqueueSubjectLogouts(ctx context.Context, subject, clientID string, now, giveUp time.Time) (int, error)
	// ClaimLogouts takes up to limit jobs due at now and not expired,
	// oldest due first, for one delivery attempt each: in one atomic step
	// their NextAttempt becomes until, so that no caller, on any replica,
	// gets them again before until. The jobs it returns carry NextAttempt
	// = until: the claim, which RescheduleLogout and DeleteLogout check.
	// A job whose claim lapses (its deliverer died) is due again.
	ClaimLogouts(ctx context.Context, now, until time.Time, limit int) ([]LogoutJob, error)
	// RescheduleLogout records a failed attempt of the claimed job j: its
	// Attempts and NextAttempt become the given ones, only if j's claim
	// still holds (nobody claimed it since). It reports whether it did; a
	// missing or reclaimed job is not an error.
	RescheduleLogout(ctx context.Context, j LogoutJob, attempts int, next time.Time) (bool, error)
	// DeleteLogout removes the claimed job j (delivered, abandoned or
	// dropped), only if j's claim still holds. It reports whether it did;
	// a missing or reclaimed job is not an error.
	DeleteLogout(ctx context.Context, j LogoutJob) (bool, error)
}
