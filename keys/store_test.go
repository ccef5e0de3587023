package keys_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// memStore is a tiny in-memory keys.Store for these tests: a map and a mutex.
type memStore struct {
	mu    sync.Mutex
	keys  map[string]storage.SigningKey // guarded by mu
	reads atomic.Int64                  // SigningKeys calls
}

func newMemStore() *memStore { return &memStore{keys: map[string]storage.SigningKey{}} }

func (s *memStore) CreateSigningKey(_ context.Context, k storage.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.KID]; ok {
		return fmt.Errorf("create key %s: %w", k.KID, storage.ErrAlreadyExists)
	}
	k.Private, k.Public = bytes.Clone(k.Private), bytes.Clone(k.Public)
	s.keys[k.KID] = k
	return nil
}

func (s *memStore) SigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		k.Private, k.Public = bytes.Clone(k.Private), bytes.Clone(k.Public)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return out, nil
}

func (s *memStore) DeleteSigningKey(_ context.Context, kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, kid)
	return nil
}

// update applies f to the stored key kid (to simulate tampering).
func (s *memStore) update(kid string, f func(*storage.SigningKey)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[kid]
	f(&k)
	s.keys[kid] = k
}

// leaseStore adds keys.Leaser to memStore.
type leaseStore struct {
	*memStore
	lmu    sync.Mutex
	holder string    // guarded by lmu
	until  time.Time // guarded by lmu
	now    func() time.Time
}

func (s *leaseStore) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	now := s.now()
	if s.holder != "" && s.holder != holder && now.Before(s.until) {
		return false, nil
	}
	s.holder, s.until = holder, now.Add(ttl)
	return true, nil
}

func (s *leaseStore) ReleaseLease(_ context.Context, name, holder string) error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.holder == holder {
		s.holder = ""
	}
	return nil
}

// clock is a fake clock that tests step by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
