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
//
// A backend may put off a write that the request's next write can carry
// (Defer): fosite deletes a code's PKCE session before it checks the
// verifier, and the code's invalidation, when the exchange succeeds, can
// delete it in the same statement. Whoever made the Prefetch calls Flush
// before answering, so that a write the exchange did not carry (it failed
// first) is made all the same, before the client can try again.
type Prefetch struct {
	mu       sync.Mutex
	users    map[string]User
	rows     map[string]any
	code     string
	deferred map[string]func(context.Context) error
}

// Defer puts off write under key until Flush, unless a backend takes it
// over first (Deferred, Done). p must not be nil.
func (p *Prefetch) Defer(key string, write func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deferred == nil {
		p.deferred = map[string]func(context.Context) error{}
	}
	p.deferred[key] = write
}

// Deferred reports whether a write is put off under key.
func (p *Prefetch) Deferred(key string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.deferred[key]
	return ok
}

// Done drops the write put off under key: a backend made it with another
// (and that one committed).
func (p *Prefetch) Done(key string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.deferred, key)
}

// Flush makes the writes still put off, and returns the first error. It
// does nothing on a nil Prefetch.
func (p *Prefetch) Flush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	writes := p.deferred
	p.deferred = nil
	p.mu.Unlock()
	var first error
	for _, w := range writes {
		if err := w(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
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
