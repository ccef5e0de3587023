package storage

import (
	"context"
	"log/slog"
	"time"
)

// janitorLease is the lease that lets one replica at a time clean up.
const janitorLease = "janitor"

// RunJanitor deletes expired records, rolls the audit trail up into daily
// counts (Stats.RollUpEvents, RollUpLag behind the clock) and deletes
// events and roll-ups older than eventRetention (none when it is zero),
// every interval until ctx ends.
// With several replicas on one database, the janitor lease makes one of
// them do the work each round. holder names this process.
func RunJanitor(ctx context.Context, s Storage, interval, eventRetention time.Duration, holder string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := s.AcquireLease(ctx, janitorLease, holder, interval)
		if err != nil {
			log.WarnContext(ctx, "janitor lease", "error", err)
			continue
		}
		if !ok {
			continue
		}
		now := time.Now()
		n, err := s.DeleteExpired(ctx, now)
		if err != nil {
			log.WarnContext(ctx, "janitor", "error", err)
			continue
		}
		if n > 0 {
			log.InfoContext(ctx, "janitor deleted expired records", "rows", n)
		}
		// Roll-ups before retention, so that no event goes uncounted.
		if _, err := s.RollUpEvents(ctx, now.Add(-RollUpLag)); err != nil {
			log.WarnContext(ctx, "janitor: event roll-ups", "error", err)
		}
		if eventRetention <= 0 {
			continue
		}
		n, err = s.DeleteEventsBefore(ctx, now.Add(-eventRetention))
		if err != nil {
			log.WarnContext(ctx, "janitor: events", "error", err)
			continue
		}
		if n > 0 {
			log.InfoContext(ctx, "janitor deleted old events", "events", n)
		}
	}
}
