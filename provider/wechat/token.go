package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// TokenStore keeps server access tokens where every replica sees them.
// Implementations must be safe for concurrent use.
type TokenStore interface {
	// LoadToken returns the stored token of appID, or ErrNoToken.
	LoadToken(ctx context.Context, appID string) (ServerToken, error)
	// SaveToken stores tok unless the stored token expires at the same time
	// or later; returns the token stored afterwards. This compare-and-swap
	// on ExpiresAt is what keeps a stale token from overwriting a fresh one.
	SaveToken(ctx context.Context, appID string, tok ServerToken) (ServerToken, error)
	// DeleteToken removes the stored token of appID only if it expires at
	// expiresAt (so a replica that saw a stale token cannot delete the fresh
	// one another replica stored since). Deleting nothing is not an error.
	DeleteToken(ctx context.Context, appID string, expiresAt time.Time) error
}

// TokenLocker is an optional interface of a [TokenStore] that holds a lock
// across replicas, so that only one replica fetches a token from WeChat at
// a time.
type TokenLocker interface {
	// LockToken tries to take the refresh lock of appID without waiting.
	// If ok, the caller holds the lock until it calls unlock (exactly once);
	// an implementation should also let the lock lapse after a lease of at
	// least a minute, in case the holder dies. If !ok another holder has it.
	LockToken(ctx context.Context, appID string) (unlock func(), ok bool, err error)
}

// How far ahead of expiry a token is refreshed. Stable tokens are rolled by
// WeChat 5 minutes before expiry, so asking earlier than that returns the
// same token again; 4 minutes leaves a minute for clock skew. Classic tokens
// are minted on each call, so any margin works.
const (
	stableRefreshAhead  = 4 * time.Minute
	classicRefreshAhead = 5 * time.Minute
	lockPoll            = 25 * time.Millisecond
)

func (c *Client) fresh(t ServerToken, now time.Time) bool {
	if t.AccessToken == "" {
		return false
	}
	ahead := stableRefreshAhead
	if c.UseClassicToken {
		ahead = classicRefreshAhead
	}
	return now.Before(t.ExpiresAt.Add(-ahead))
}

func (c *Client) cachedToken() ServerToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cached
}

func (c *Client) setCached(t ServerToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.ExpiresAt.After(c.cached.ExpiresAt) || t.AccessToken == c.cached.AccessToken {
		c.cached = t
	}
}

// ServerToken returns a server access token of the app. It reuses the
// stored token while more than a few minutes of its life remain (a local
// copy saves a storage round trip); otherwise it fetches one, at most once
// at a time per Client (singleflight) and, when Tokens implements
// [TokenLocker], at most once at a time across replicas: the others wait
// briefly and re-load. A fetched token is saved with compare-and-swap, so a
// stale token never overwrites a fresh one. By default it uses
// stable_token in normal mode (never force_refresh); see
// [Client.UseClassicToken]. If a refresh ahead of expiry fails, the old
// token is returned while it is still valid.
func (c *Client) ServerToken(ctx context.Context) (string, error) {
	t, err := c.serverToken(ctx)
	return t.AccessToken, err
}

func (c *Client) serverToken(ctx context.Context) (ServerToken, error) {
	c.init()
	now := c.now()
	old := c.cachedToken()
	if c.fresh(old, now) {
		return old, nil
	}
	t, err := c.tokens.LoadToken(ctx, c.AppID)
	switch {
	case err == nil:
		c.setCached(t)
		if c.fresh(t, now) {
			return t, nil
		}
		if t.ExpiresAt.After(old.ExpiresAt) {
			old = t
		}
	case !errors.Is(err, ErrNoToken):
		if now.Before(old.ExpiresAt) {
			c.log.Warn("wechat: cannot load server token; using local copy", "err", err)
			return old, nil
		}
		return ServerToken{}, fmt.Errorf("wechat: load server token: %w", err)
	}

	ch := c.sf.DoChan("token", func() (any, error) {
		// Detached from the first caller's cancellation: the others share
		// this fetch. Bounded by the per-attempt timeouts and retries.
		return c.refreshToken(context.WithoutCancel(ctx))
	})
	select {
	case <-ctx.Done():
		return ServerToken{}, fmt.Errorf("wechat: server token: %w", ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			if c.now().Before(old.ExpiresAt) && old.AccessToken != "" {
				c.log.Warn("wechat: server token refresh failed; using the current one until it expires",
					"errcode", errcodeOf(res.Err), "class", ClassOf(res.Err).String())
				return old, nil
			}
			return ServerToken{}, res.Err
		}
		return res.Val.(ServerToken), nil
	}
}

// refreshToken runs inside the singleflight.
func (c *Client) refreshToken(ctx context.Context) (ServerToken, error) {
	if t, err := c.tokens.LoadToken(ctx, c.AppID); err == nil && c.fresh(t, c.now()) {
		c.setCached(t)
		return t, nil
	}
	if locker, ok := c.tokens.(TokenLocker); ok {
		unlock, got, err := locker.LockToken(ctx, c.AppID)
		switch {
		case err != nil:
			c.log.Warn("wechat: cannot take the token refresh lock; fetching anyway", "err", err)
		case !got:
			if t, ok := c.waitForToken(ctx); ok {
				return t, nil
			}
			c.log.Warn("wechat: token refresh by another replica did not finish in time; fetching")
		default:
			defer unlock()
			if t, err := c.tokens.LoadToken(ctx, c.AppID); err == nil && c.fresh(t, c.now()) {
				c.setCached(t)
				return t, nil
			}
		}
	}
	fetched, err := c.fetchToken(ctx)
	if err != nil {
		return ServerToken{}, err
	}
	stored, err := c.tokens.SaveToken(ctx, c.AppID, fetched)
	if err != nil {
		c.log.Warn("wechat: cannot save server token", "err", err)
		stored = fetched
	}
	c.setCached(stored)
	return stored, nil
}

// waitForToken polls the store while another replica holds the lock, for
// up to one call timeout.
func (c *Client) waitForToken(ctx context.Context) (ServerToken, bool) {
	deadline := time.NewTimer(c.timeout())
	defer deadline.Stop()
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ServerToken{}, false
		case <-deadline.C:
			return ServerToken{}, false
		case <-tick.C:
			if t, err := c.tokens.LoadToken(ctx, c.AppID); err == nil && c.fresh(t, c.now()) {
				c.setCached(t)
				return t, true
			}
		}
	}
}

// fetchToken asks WeChat for a token.
func (c *Client) fetchToken(ctx context.Context) (ServerToken, error) {
	start := c.now()
	var tr TokenResponse
	var err error
	if c.UseClassicToken {
		err = c.do(ctx, request{
			op:     opToken,
			method: http.MethodGet,
			path:   PathToken,
			query: url.Values{
				"grant_type": {"client_credential"},
				"appid":      {c.AppID},
				"secret":     {c.AppSecret},
			},
		}, &tr)
	} else {
		err = c.do(ctx, request{
			op:     opStableToken,
			method: http.MethodPost,
			path:   PathStableToken,
			body: StableTokenRequest{
				GrantType: "client_credential",
				AppID:     c.AppID,
				Secret:    c.AppSecret,
			},
			idempotent: true,
		}, &tr)
	}
	op := opStableToken
	if c.UseClassicToken {
		op = opToken
	}
	if err == nil && (tr.AccessToken == "" || tr.ExpiresIn <= 0) {
		err = malformed(op, "access_token or expires_in missing")
	}
	if c.ObserveTokenRefresh != nil {
		c.ObserveTokenRefresh(err)
	}
	if err != nil {
		c.log.Error("wechat: server token fetch failed", "op", op, "errcode", errcodeOf(err), "class", ClassOf(err).String())
		return ServerToken{}, err
	}
	c.log.Info("wechat: fetched server token", "op", op, "expires_in", tr.ExpiresIn)
	return ServerToken{AccessToken: tr.AccessToken, ExpiresAt: start.Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// invalidate forgets t after WeChat rejected it.
func (c *Client) invalidate(ctx context.Context, t ServerToken) {
	c.mu.Lock()
	if c.cached.AccessToken == t.AccessToken {
		c.cached = ServerToken{}
	}
	c.mu.Unlock()
	if err := c.tokens.DeleteToken(ctx, c.AppID, t.ExpiresAt); err != nil {
		c.log.Warn("wechat: cannot delete stale server token", "err", err)
	}
}

// withServerToken calls fn with a server token; if WeChat says the token
// is stale, it invalidates the token and calls fn exactly once more.
func withServerToken[T any](ctx context.Context, c *Client, fn func(token string) (T, error)) (T, error) {
	var zero T
	tok, err := c.serverToken(ctx)
	if err != nil {
		return zero, err
	}
	v, err := fn(tok.AccessToken)
	if err == nil || !IsStaleToken(err) {
		return v, err
	}
	c.log.Info("wechat: server token rejected; refreshing and retrying once", "errcode", errcodeOf(err))
	c.invalidate(ctx, tok)
	tok, err = c.serverToken(ctx)
	if err != nil {
		return zero, err
	}
	return fn(tok.AccessToken)
}

// MemoryTokenStore is a [TokenStore] and [TokenLocker] in memory, for a
// single process and for tests. Several Clients sharing one behave like
// replicas sharing a database. The zero value is not usable; call
// [NewMemoryTokenStore].
type MemoryTokenStore struct {
	mu     sync.Mutex
	tokens map[string]ServerToken // by appid; guarded by mu
	locked map[string]bool        // appids whose refresh lock is held; guarded by mu
}

var (
	_ TokenStore  = (*MemoryTokenStore)(nil)
	_ TokenLocker = (*MemoryTokenStore)(nil)
)

// NewMemoryTokenStore returns an empty store.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{tokens: map[string]ServerToken{}, locked: map[string]bool{}}
}

// LoadToken implements [TokenStore].
func (s *MemoryTokenStore) LoadToken(_ context.Context, appID string) (ServerToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[appID]
	if !ok {
		return ServerToken{}, ErrNoToken
	}
	return t, nil
}

// SaveToken implements [TokenStore].
func (s *MemoryTokenStore) SaveToken(_ context.Context, appID string, tok ServerToken) (ServerToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.tokens[appID]; ok && !cur.ExpiresAt.Before(tok.ExpiresAt) {
		return cur, nil
	}
	s.tokens[appID] = tok
	return tok, nil
}

// DeleteToken implements [TokenStore].
func (s *MemoryTokenStore) DeleteToken(_ context.Context, appID string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.tokens[appID]; ok && cur.ExpiresAt.Equal(expiresAt) {
		delete(s.tokens, appID)
	}
	return nil
}

// LockToken implements [TokenLocker]. The lock has no lease: the holder is
// in the same process and always unlocks.
func (s *MemoryTokenStore) LockToken(_ context.Context, appID string) (func(), bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[appID] {
		return nil, false, nil
	}
	s.locked[appID] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.locked, appID)
			s.mu.Unlock()
		})
	}, true, nil
}
