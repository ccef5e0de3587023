package memory

import (
	"context"
	"slices"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

var _ storage.Stats = (*Store)(nil)

// CountUsers implements storage.Stats.
func (s *Store) CountUsers(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.users)), nil
}

// CountEvents implements storage.Stats.
func (s *Store) CountEvents(_ context.Context, types []string, since, until time.Time) ([]storage.EventCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type key struct {
		day         time.Time
		typ, method string
	}
	counts := map[key]int64{}
	for _, e := range s.events {
		if e.Time.Before(since) || !e.Time.Before(until) || !slices.Contains(types, e.Type) {
			continue
		}
		m, _ := e.Details["method"].(string)
		counts[key{storage.DayOf(e.Time), e.Type, m}]++
	}
	out := make([]storage.EventCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, storage.EventCount{Day: k.day, Type: k.typ, Method: k.method, Count: n})
	}
	return out, nil
}
