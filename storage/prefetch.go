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
//
// A backend may also keep a row it read for a second read of the same row
// in the same context (PutRow, Row): fosite reads an authorization code
// once to check the token request and again to issue the tokens, and the
// code's single use is decided by its conditional invalidation when the
// tokens commit, not by the second read.
//
// An exchange of an authorization code names the raw code
// (SetAuthorizeCode): a backend that reads the code's row may then read
// the code's PKCE and OpenID Connect sessions (keyed by the code's
// signature and by the raw code) in the same round trip and keep them as
// rows for the reads fosite makes of them next. The code's single use
// still decides: those sessions are only deleted by an exchange of that
// code.
type Prefetch struct {
	mu    sync.Mutex
	users map[string]User
	rows  map[string]any
	code  string
}

// SetAuthorizeCode records the raw authorization code the request
// exchanges. It does nothing on a nil Prefetch.
func (p *Prefetch) SetAuthorizeCode(code string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.code = code
}

// AuthorizeCode returns the code SetAuthorizeCode recorded, or "".
func (p *Prefetch) AuthorizeCode() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
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

// PutRow records a backend's row under key (the backend's choice, say its
// table and the row's key); row must not be changed afterwards. It does
// nothing on a nil Prefetch.
func (p *Prefetch) PutRow(key string, row any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rows == nil {
		p.rows = map[string]any{}
	}
	p.rows[key] = row
}

// Row returns the row recorded under key. A nil Prefetch has none.
func (p *Prefetch) Row(key string) (any, bool) {
	if p == nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.rows[key]
	return r, ok
}
