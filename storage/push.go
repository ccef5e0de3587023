package storage

import (
	"context"
	"time"
)

// PushEvent is a message or event that WeChat pushed to an official
// account (message push, 消息推送). The receiver records it before it
// acknowledges the push, so that its work is done once whichever replica
// gets WeChat's retries, and is finished by another replica if the first
// one dies.
type PushEvent struct {
	AppID string
	// Key identifies the push across WeChat's retries, which resend the
	// same message; unique per AppID.
	Key string
	// OpenID is the sender (FromUserName), the official account's openid
	// of the person; erasing the user linked to it (DeleteUser) or
	// unlinking that identity (UnlinkIdentity) deletes the event. Empty
	// when the push names nobody.
	OpenID string
	// Data is the event as the receiver keeps it; opaque here.
	Data       []byte
	ReceivedAt time.Time
	// ExpiresAt is when DeleteExpired may remove the record, done or not;
	// duplicates are recognised until then.
	ExpiresAt time.Time
}

// PushEventStore records pushed events and hands each one out for
// processing until it is finished. Processing takes a claim that lapses,
// so an event whose processor died is claimed again later.
type PushEventStore interface {
	// RecordPushEvent stores e, claimed by the caller until claimUntil,
	// unless an event with the same (AppID, Key) is stored: then it
	// changes nothing and reports false. Of concurrent calls for one key
	// exactly one reports true.
	RecordPushEvent(ctx context.Context, e PushEvent, claimUntil time.Time) (bool, error)
	// ClaimPushEvents claims up to limit unfinished, unexpired events
	// whose claim lapsed by now, until until, and returns them oldest
	// first. An event is never returned to two callers while a claim
	// holds.
	ClaimPushEvents(ctx context.Context, now, until time.Time, limit int) ([]PushEvent, error)
	// FinishPushEvent marks an event done, so that no claim returns it
	// again. Finishing an unknown or finished event is not an error.
	FinishPushEvent(ctx context.Context, appID, key string) error
}
