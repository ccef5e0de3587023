package memory

import (
	"context"
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// successors holds refresh successors (storage.RefreshGraceStore).
type successors struct {
	mu sync.Mutex                          // guards m
	m  map[string]storage.RefreshSuccessor // by rotated signature; created on first use
}

func (g *successors) deleteExpired(before time.Time) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for k, s := range g.m {
		if s.ExpiresAt.Before(before) {
			delete(g.m, k)
			n++
		}
	}
	return n
}

// delete deletes the records of the rotated signatures.
func (g *successors) delete(signatures []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, sig := range signatures {
		delete(g.m, sig)
	}
}

// PutRefreshSuccessor implements storage.RefreshGraceStore.
func (s *Store) PutRefreshSuccessor(_ context.Context, r storage.RefreshSuccessor) error {
	g := &s.successors
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]storage.RefreshSuccessor{}
	}
	if _, ok := g.m[r.Signature]; !ok {
		r.Response = append([]byte(nil), r.Response...)
		g.m[r.Signature] = r
	}
	return nil
}

// RefreshSuccessor implements storage.RefreshGraceStore.
func (s *Store) RefreshSuccessor(_ context.Context, signature string, now time.Time) (storage.RefreshSuccessor, error) {
	g := &s.successors
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.m[signature]
	if !ok || !now.Before(r.ExpiresAt) {
		return storage.RefreshSuccessor{}, storage.ErrNotFound
	}
	r.Response = append([]byte(nil), r.Response...)
	return r, nil
}
