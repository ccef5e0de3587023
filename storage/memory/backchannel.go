package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// backchannel holds session clients and logout jobs
// (storage.BackchannelStore). Its maps are created on first use.
type backchannel struct {
	mu       sync.Mutex                   // guards every field below
	sessions map[[2]string]sessionClient  // by (sid, client)
	jobs     map[string]storage.LogoutJob // by ID
}

type sessionClient struct {
	subject   string
	expiresAt time.Time
}

func (b *backchannel) initLocked() {
	if b.jobs == nil {
		b.sessions = map[[2]string]sessionClient{}
		b.jobs = map[string]storage.LogoutJob{}
	}
}

func (b *backchannel) deleteExpired(before time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for k, c := range b.sessions {
		if c.expiresAt.Before(before) {
			delete(b.sessions, k)
			n++
		}
	}
	for k, j := range b.jobs {
		if j.ExpiresAt.Before(before) {
			delete(b.jobs, k)
			n++
		}
	}
	return n
}

// AddSessionClient implements storage.BackchannelStore.
func (s *Store) AddSessionClient(_ context.Context, sid, subject, clientID string, expiresAt time.Time) error {
	b := &s.backchannel
	b.mu.Lock()
	defer b.mu.Unlock()
	b.initLocked()
	b.sessions[[2]string{sid, clientID}] = sessionClient{subject: subject, expiresAt: expiresAt}
	return nil
}

// EnqueueSessionLogouts implements storage.BackchannelStore.
func (s *Store) EnqueueSessionLogouts(_ context.Context, sid string, now, giveUp time.Time) (int, error) {
	return s.enqueueLogouts(func(k [2]string, _ sessionClient) bool { return k[0] == sid }, now, giveUp), nil
}

// EnqueueSubjectLogouts implements storage.BackchannelStore.
func (s *Store) EnqueueSubjectLogouts(_ context.Context, subject, clientID string, now, giveUp time.Time) (int, error) {
	return s.enqueueLogouts(func(k [2]string, c sessionClient) bool {
		return c.subject == subject && (clientID == "" || k[1] == clientID)
	}, now, giveUp), nil
}

func (s *Store) enqueueLogouts(match func([2]string, sessionClient) bool, now, giveUp time.Time) int {
	b := &s.backchannel
	b.mu.Lock()
	defer b.mu.Unlock()
	b.initLocked()
	n := 0
	for k, c := range b.sessions {
		if !match(k, c) {
			continue
		}
		id := make([]byte, 16)
		rand.Read(id)
		j := storage.LogoutJob{ID: hex.EncodeToString(id), ClientID: k[1], Subject: c.subject, SID: k[0], NextAttempt: now, ExpiresAt: giveUp}
		b.jobs[j.ID] = j
		delete(b.sessions, k)
		n++
	}
	return n
}

// ClaimLogouts implements storage.BackchannelStore.
func (s *Store) ClaimLogouts(_ context.Context, now, until time.Time, limit int) ([]storage.LogoutJob, error) {
	b := &s.backchannel
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []storage.LogoutJob
	for _, j := range b.jobs {
		if !j.NextAttempt.After(now) && j.ExpiresAt.After(now) {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b storage.LogoutJob) int { return a.NextAttempt.Compare(b.NextAttempt) })
	if len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		out[i].NextAttempt = until
		b.jobs[out[i].ID] = out[i]
	}
	return out, nil
}

// claimed reports whether the job j is still as its claimer got it.
// b.mu is held.
func (b *backchannel) claimed(j storage.LogoutJob) bool {
	cur, ok := b.jobs[j.ID]
	return ok && cur.NextAttempt.Equal(j.NextAttempt)
}

// RescheduleLogout implements storage.BackchannelStore.
func (s *Store) RescheduleLogout(_ context.Context, j storage.LogoutJob, attempts int, next time.Time) (bool, error) {
	b := &s.backchannel
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.claimed(j) {
		return false, nil
	}
	cur := b.jobs[j.ID]
	cur.Attempts, cur.NextAttempt = attempts, next
	b.jobs[j.ID] = cur
	return true, nil
}

// DeleteLogout implements storage.BackchannelStore.
func (s *Store) DeleteLogout(_ context.Context, j storage.LogoutJob) (bool, error) {
	b := &s.backchannel
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.claimed(j) {
		return false, nil
	}
	delete(b.jobs, j.ID)
	return true, nil
}
