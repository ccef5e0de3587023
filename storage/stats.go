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
	// none), in no particular order. Whole hours before the roll-up
	// watermark (see RollUpEvents) are read from the hourly roll-ups; the
	// rest, from the events themselves.
	CountEvents(ctx context.Context, types []string, since, until time.Time) ([]EventCount, error)
	// RollUpEvents counts the events of every whole UTC hour that ended by
	// before and is not rolled up yet, per type and method, into hourly
	// roll-ups, and advances the watermark (the end of the last hour
	// rolled up) to the last whole hour before before. It returns the
	// watermark.
	//
	// The watermark lives in the store and moves by compare-and-swap in
	// the transaction that writes the hours' counts: callers racing (the
	// janitors of several replicas) each count every hour at most once,
	// and one that loses the race writes nothing and is not an error. It
	// works through a backlog (the first roll-up of an existing audit
	// trail) a day of events per transaction.
	//
	// An event stored later with a Time before the watermark is not
	// counted by CountEvents (it is still in the audit trail): callers
	// pass a before that trails the clock by more than a transaction
	// lasts (the janitor: RollUpLag).
	RollUpEvents(ctx context.Context, before time.Time) (time.Time, error)
}

// RollUpLag is how far the janitor's event roll-ups trail the clock: an
// event is stored with the time its transaction began, on a replica whose
// clock may be a little behind.
const RollUpLag = 10 * time.Minute

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

// RollUpSpans splits [since, until) for CountEvents with roll-ups up to
// watermark: the whole hours in [since, min(until, watermark)) come from
// the roll-ups (rolled, empty when from == to), the rest (at most a part
// hour before them and everything from them to until) from the events.
func RollUpSpans(since, until, watermark time.Time) (rolled [2]time.Time, raw [][2]time.Time) {
	from := since.Truncate(time.Hour)
	if from.Before(since) {
		from = from.Add(time.Hour)
	}
	to := until.Truncate(time.Hour)
	if watermark.Before(to) {
		to = watermark.Truncate(time.Hour)
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
