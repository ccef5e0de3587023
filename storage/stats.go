package storage

import (
	"context"
	"time"
)

// Stats summarises users and the audit trail without reading them out,
// for the admin console's overview: its answers cost about the same with
// a thousand users and events as with millions.
type Stats interface {
	// CountUsers returns how many users exist. The SQL backends keep the
	// number in the database, updated by triggers in the transaction of
	// every insert and delete of users, so it does not count rows.
	CountUsers(ctx context.Context) (int64, error)
	// CountEvents counts the events of the given types with since <= Time
	// < until, per UTC day, type and the "method" of their details ("" for
	// none), in no particular order. The whole days from since to the
	// roll-up watermark (see RollUpEvents) are read from the daily
	// roll-ups; the rest (the events since the watermark, and part days
	// at either end), from the events themselves.
	CountEvents(ctx context.Context, types []string, since, until time.Time) ([]EventCount, error)
	// RollUpEvents adds the events from the roll-up watermark to before
	// (truncated to the minute) that are not rolled up yet to the daily
	// roll-ups, per UTC day, type and method, and advances the watermark
	// there. It returns the watermark (the zero time before the first
	// roll-up).
	//
	// The watermark lives in the store and moves by compare-and-swap in
	// the transaction that adds the counts: callers racing (the janitors
	// of several replicas) count every event once between them, and one
	// that loses the race writes nothing and is not an error. It works
	// through a backlog (the first roll-up of an existing audit trail) a
	// day of events per transaction.
	//
	// An event stored later with a Time before the watermark is not
	// counted by CountEvents (it is still in the audit trail): callers
	// pass a before that trails the clock by more than a transaction
	// lasts (the janitor: RollUpLag).
	RollUpEvents(ctx context.Context, before time.Time) (time.Time, error)
}

// RollUpLag is how far the janitor's event roll-ups trail the clock: an
// event is stored with a time taken as its transaction began, on a replica
// whose clock may be a little behind. The events the overview counts one
// by one are those of the last RollUpLag plus up to a janitor interval.
const RollUpLag = 5 * time.Minute

// EventCount is a number of events of one type and method on one day.
type EventCount struct {
	// Day is the UTC midnight that starts the day.
	Day    time.Time
	Type   string
	Method string
	Count  int64
}

// DayOf returns the UTC midnight that starts t's day.
func DayOf(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

// RollUpSpans splits [since, until) for CountEvents with daily roll-ups
// up to watermark: the days from since's (or, when since is not a
// midnight, the next) to until's midnight or the watermark, whichever is
// first, come from the roll-ups (rolled; empty when from == to), the rest
// (a part day before them, and everything from their end to until) from
// the events. A day's roll-up holds exactly its events before the
// watermark, so a span that ends at the watermark may end mid-day.
func RollUpSpans(since, until, watermark time.Time) (rolled [2]time.Time, raw [][2]time.Time) {
	from := DayOf(since)
	if from.Before(since) {
		from = from.AddDate(0, 0, 1)
	}
	to := DayOf(until)
	if watermark.Before(to) {
		to = watermark
	}
	if !from.Before(to) {
		return [2]time.Time{}, [][2]time.Time{{since, until}}
	}
	if since.Before(from) {
		raw = append(raw, [2]time.Time{since, from})
	}
	if to.Before(until) {
		raw = append(raw, [2]time.Time{to, until})
	}
	return [2]time.Time{from, to}, raw
}
