package storage

import (
	"context"
	"sync"
)

// Prefetch carries records that a backend read together with others, so
// that the caller need not read them again. A caller puts one into a
// context with WithPrefetch; a backend that reads a refresh token in that
// context may read the token's user in the same round trip and record it
// here. A recorded user is as current as the token read.
type Prefetch struct {
	mu    sync.Mutex
	users map[string]User
}

type prefetchKey struct{}

// WithPrefetch returns ctx carrying a new, empty Prefetch.
func WithPrefetch(ctx context.Context) (context.Context, *Prefetch) {
	p := &Prefetch{}
	return context.WithValue(ctx, prefetchKey{}, p), p
}

// PrefetchFrom returns the Prefetch of ctx, or nil.
func PrefetchFrom(ctx context.Context) *Prefetch {
	p, _ := ctx.Value(prefetchKey{}).(*Prefetch)
	return p
}

// PutUser records u. It does nothing on a nil Prefetch.
func (p *Prefetch) PutUser(u User) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == nil {
		p.users = map[string]User{}
	}
	p.users[u.Subject] = u
}

// User returns the recorded user with the given subject. A nil Prefetch
// has none.
func (p *Prefetch) User(subject string) (User, bool) {
	if p == nil {
		return User{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[subject]
	return u, ok
}
