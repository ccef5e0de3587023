package memory

import (
	"context"
	"slices"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

var _ storage.Stats = (*Store)(nil)

// rollups are the daily event counts of Stats.RollUpEvents; guarded by
// Store.mu.
type rollups struct {
	counts  map[rollKey]int64
	through time.Time // the watermark: every event before it is counted; zero for none
}

type rollKey struct {
	day         time.Time // UTC midnight
	typ, method string
}

// CountUsers implements storage.Stats.
func (s *Store) CountUsers(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.users)), nil
}

// CountEvents implements storage.Stats: roll-ups up to the watermark,
// events after it, as the SQL backends do.
func (s *Store) CountEvents(_ context.Context, types []string, since, until time.Time) ([]storage.EventCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[rollKey]int64{}
	rolled, raw := storage.RollUpSpans(since, until, s.rollups.through)
	for k, n := range s.rollups.counts {
		if !k.day.Before(rolled[0]) && k.day.Before(rolled[1]) && slices.Contains(types, k.typ) {
			counts[k] += n
		}
	}
	for _, e := range s.events {
		if !slices.Contains(types, e.Type) || !inSpans(e.Time, raw) {
			continue
		}
		counts[rollKey{storage.DayOf(e.Time), e.Type, eventMethod(e)}]++
	}
	out := make([]storage.EventCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, storage.EventCount{Day: k.day, Type: k.typ, Method: k.method, Count: n})
	}
	return out, nil
}

func inSpans(t time.Time, spans [][2]time.Time) bool {
	for _, sp := range spans {
		if !t.Before(sp[0]) && t.Before(sp[1]) {
			return true
		}
	}
	return false
}

func eventMethod(e storage.Event) string {
	m, _ := e.Details["method"].(string)
	return m
}

// RollUpEvents implements storage.Stats, under the store's lock.
func (s *Store) RollUpEvents(_ context.Context, before time.Time) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := before.UTC().Truncate(time.Minute)
	r := &s.rollups
	if !r.through.Before(end) {
		return r.through, nil
	}
	for _, e := range s.events {
		if e.Time.Before(end) && (r.through.IsZero() || !e.Time.Before(r.through)) {
			r.counts[rollKey{storage.DayOf(e.Time), e.Type, eventMethod(e)}]++
		}
	}
	r.through = end
	return end, nil
}
