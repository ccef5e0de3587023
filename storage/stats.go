package storage

import (
	"context"
	"time"
)

// Stats summarises users and the audit trail without reading them out,
// for the admin console's overview.
type Stats interface {
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int64, error)
	// CountEvents counts the events of the given types with since <= Time
	// < until, per UTC day, type and the "method" of their details ("" for
	// none), in no particular order.
	CountEvents(ctx context.Context, types []string, since, until time.Time) ([]EventCount, error)
}

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
