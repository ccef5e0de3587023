package memory

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// pushEvents holds recorded push events. Its map is created on first use.
type pushEvents struct {
	mu     sync.Mutex // guards every field below
	events map[pushKey]*pushRow
}

type pushKey struct{ appID, key string }

type pushRow struct {
	e            storage.PushEvent
	claimedUntil time.Time
	done         bool
}

func (p *pushEvents) deleteExpired(before time.Time) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for k, r := range p.events {
		if r.e.ExpiresAt.Before(before) {
			delete(p.events, k)
			n++
		}
	}
	return n
}

// deleteSent deletes the events sent by the identities in sent, keyed by
// (appID, openID).
func (p *pushEvents) deleteSent(sent map[identityKey]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, r := range p.events {
		if r.e.OpenID != "" && sent[identityKey{r.e.AppID, r.e.OpenID}] {
			delete(p.events, k)
		}
	}
}

// RecordPushEvent implements storage.PushEventStore.
func (s *Store) RecordPushEvent(_ context.Context, e storage.PushEvent, claimUntil time.Time) (bool, error) {
	p := &s.pushes
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.events == nil {
		p.events = map[pushKey]*pushRow{}
	}
	k := pushKey{e.AppID, e.Key}
	if _, ok := p.events[k]; ok {
		return false, nil
	}
	e.Data = slices.Clone(e.Data)
	p.events[k] = &pushRow{e: e, claimedUntil: claimUntil}
	return true, nil
}

// ClaimPushEvents implements storage.PushEventStore.
func (s *Store) ClaimPushEvents(_ context.Context, now, until time.Time, limit int) ([]storage.PushEvent, error) {
	p := &s.pushes
	p.mu.Lock()
	defer p.mu.Unlock()
	var due []*pushRow
	for _, r := range p.events {
		if !r.done && !r.claimedUntil.After(now) && r.e.ExpiresAt.After(now) {
			due = append(due, r)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].e.ReceivedAt.Equal(due[j].e.ReceivedAt) {
			return due[i].e.ReceivedAt.Before(due[j].e.ReceivedAt)
		}
		return due[i].e.Key < due[j].e.Key
	})
	if len(due) > limit {
		due = due[:max(limit, 0)]
	}
	out := make([]storage.PushEvent, 0, len(due))
	for _, r := range due {
		r.claimedUntil = until
		e := r.e
		e.Data = slices.Clone(e.Data)
		out = append(out, e)
	}
	return out, nil
}

// FinishPushEvent implements storage.PushEventStore.
func (s *Store) FinishPushEvent(_ context.Context, appID, key string) error {
	p := &s.pushes
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.events[pushKey{appID, key}]; ok {
		r.done = true
	}
	return nil
}
