package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// requireNoSecrets fails if err's text carries anything secret.
func requireNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, mpSecret, webSecret, oaSecret, "secret=", "access_token=") {
		require.NotContains(t, err.Error(), s)
	}
}

func TestClient_Code2Session(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	s, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	require.Equal(t, e.sim.OpenID(mpID, "alice"), s.OpenID)
	require.Equal(t, e.sim.UnionID(mpID, "alice"), s.UnionID)
	require.Equal(t, e.sim.SessionKey(mpID, "alice"), s.SessionKey)
	require.Len(t, s.OpenID, 28)
	require.True(t, strings.HasPrefix(s.OpenID, "o"))
	require.Len(t, s.SessionKey, 24)
	require.NotEmpty(t, s.UnionID)
	require.Equal(t, 1, e.sim.Calls(wechat.PathJSCode2Session))
}

// The text/plain quirk: the simulator answers jscode2session as WeChat
// does, and the client parses it regardless.
func TestClient_Code2Session_textPlain(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	q := url.Values{"appid": {mpID}, "secret": {mpSecret}, "js_code": {e.loginCode(t, mpID, "bob")}, "grant_type": {"authorization_code"}}
	resp, err := http.Get(e.ts.URL + wechat.PathJSCode2Session + "?" + q.Encode())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	require.NotContains(t, string(body), "errcode")

	// A client pointed at a server that sends exactly WeChat's documented
	// body with text/plain.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, `{"session_key":"XxyaPnstTGqODxorPE1ebw==","openid":"o6Zx55Qk3mT1pVbR9cYdLw2eHs0A","unionid":"oR2bV5uYq8NcK1tW7zXeP3mJd9Fg"}`)
	}))
	defer ts.Close()
	c := &wechat.Client{AppID: mpID, AppSecret: mpSecret, Endpoint: wechat.Endpoint{APIURL: ts.URL}}
	s, err := c.Code2Session(t.Context(), "x")
	require.NoError(t, err)
	require.Equal(t, "o6Zx55Qk3mT1pVbR9cYdLw2eHs0A", s.OpenID)
}

func TestClient_Code2Session_unbound(t *testing.T) {
	e := newEnv(t, wechattest.Config{Apps: []wechattest.App{{AppID: "wxunbound", Secret: "s", Kind: wechat.KindMiniProgram}}})
	c := e.client("wxunbound", "s")
	s, err := c.Code2Session(t.Context(), e.loginCode(t, "wxunbound", "alice"))
	require.NoError(t, err)
	require.Empty(t, s.UnionID)
}

func TestClient_Code2Session_errors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(e *env) (client *wechat.Client, code string)
		wantCode  int
		wantClass wechat.Class
		wantCalls int
	}{
		{"unknown code", func(e *env) (*wechat.Client, string) { return e.client(mpID, mpSecret), "nope" },
			wechat.CodeInvalidCode, wechat.ClassInvalidCode, 1},
		{"used code", func(e *env) (*wechat.Client, string) {
			c, code := e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
			if _, err := c.Code2Session(t.Context(), code); err != nil {
				t.Fatal(err)
			}
			e.sim.ResetCalls()
			return c, code
		}, wechat.CodeCodeUsed, wechat.ClassInvalidCode, 1},
		{"expired code", func(e *env) (*wechat.Client, string) {
			code := e.loginCode(t, mpID, "alice")
			e.clk.Advance(wechattest.LoginCodeTTL + time.Second)
			return e.client(mpID, mpSecret), code
		}, wechat.CodeInvalidCode, wechat.ClassInvalidCode, 1},
		{"code of another app", func(e *env) (*wechat.Client, string) {
			return e.client("wxother", "other-secret"), e.loginCode(t, mpID, "alice")
		}, wechat.CodeInvalidCode, wechat.ClassInvalidCode, 1},
		{"blocked", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{Errcode: wechat.CodeCodeBlocked, ErrcodeCount: 1})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeCodeBlocked, wechat.ClassInvalidCode, 1},
		{"busy every time", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{Busy: 10})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeBusy, wechat.ClassRetryLater, 3},
		{"rate limited", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{RateLimit: 1})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeMinuteQuota, wechat.ClassRetryLater, 1},
		{"daily quota", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{Errcode: wechat.CodeDailyQuota, ErrcodeCount: 1})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeDailyQuota, wechat.ClassRetryLater, 1},
		{"wrong secret", func(e *env) (*wechat.Client, string) {
			return e.client(mpID, "not-the-secret"), e.loginCode(t, mpID, "alice")
		}, wechat.CodeInvalidAppSecret, wechat.ClassMisconfigured, 1},
		{"secret reset in console", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{WrongSecret: true})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeInvalidAppSecret, wechat.ClassMisconfigured, 1},
		{"unknown appid", func(e *env) (*wechat.Client, string) {
			return e.client("wxnosuchapp", mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeInvalidAppID, wechat.ClassMisconfigured, 1},
		{"ip not whitelisted", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{Errcode: wechat.CodeIPNotAllowed, ErrcodeCount: 1})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeIPNotAllowed, wechat.ClassMisconfigured, 1},
		{"secret frozen", func(e *env) (*wechat.Client, string) {
			e.sim.SetFaults(wechattest.Faults{Errcode: wechat.CodeAppSecretFrozen, ErrcodeCount: 1})
			return e.client(mpID, mpSecret), e.loginCode(t, mpID, "alice")
		}, wechat.CodeAppSecretFrozen, wechat.ClassMisconfigured, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Config{Apps: append(wechattest.DevApps(),
				wechattest.App{AppID: "wxother", Secret: "other-secret", Kind: wechat.KindMiniProgram})})
			c, code := tc.setup(e)
			_, err := c.Code2Session(t.Context(), code)
			var ae *wechat.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.wantCode, ae.Code)
			require.Equal(t, tc.wantClass, ae.Class())
			require.Equal(t, tc.wantClass, wechat.ClassOf(err))
			require.Contains(t, ae.Message, "rid: ")
			require.Equal(t, fmt.Sprintf("wechat: errcode %d: %s", ae.Code, ae.Message), err.Error())
			require.Equal(t, tc.wantCalls, e.sim.Calls(wechat.PathJSCode2Session))
			requireNoSecrets(t, err, code, "not-the-secret")
		})
	}
}

func TestClient_retryBusyThenSuccess(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	e.sim.SetFaults(wechattest.Faults{Busy: 2})
	c := e.client(mpID, mpSecret)
	s, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	require.Equal(t, e.sim.OpenID(mpID, "alice"), s.OpenID)
	require.Equal(t, 3, e.sim.Calls(wechat.PathJSCode2Session))

	// Retries disabled: one attempt.
	e.sim.ResetCalls()
	e.sim.SetFaults(wechattest.Faults{Busy: 1})
	c2 := e.client(mpID, mpSecret)
	c2.MaxRetries = -1
	_, err = c2.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.True(t, wechat.IsRetryLater(err))
	require.True(t, wechat.IsTemporary(err))
	require.Equal(t, 1, e.sim.Calls(wechat.PathJSCode2Session))
}

func TestClient_timeout(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	// WeChat answers far later than the client waits. The wait is long enough
	// for a request to reach the simulator on a loaded machine (each attempt
	// is counted on arrival); the answer comes five times later.
	e.sim.SetFaults(wechattest.Faults{Latency: 2 * time.Second})
	c := e.client(mpID, mpSecret)
	c.Timeout = 400 * time.Millisecond

	// A code exchange is not retried after a timeout: the code may be spent.
	code := e.loginCode(t, mpID, "alice")
	_, err := c.Code2Session(t.Context(), code)
	require.ErrorIs(t, err, wechat.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, wechat.ClassUnavailable, wechat.ClassOf(err))
	require.Equal(t, 1, e.sim.Calls(wechat.PathJSCode2Session))
	requireNoSecrets(t, err, code)

	// The stable token fetch is idempotent and retried.
	_, err = c.ServerToken(t.Context())
	require.ErrorIs(t, err, wechat.ErrUnavailable)
	require.Equal(t, 3, e.sim.Calls(wechat.PathStableToken))
}

func TestClient_contextCancel(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	e.sim.SetFaults(wechattest.Faults{Latency: 5 * time.Second})
	c := e.client(mpID, mpSecret)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Code2Session(ctx, e.loginCode(t, mpID, "alice"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, wechat.ErrUnavailable, "the caller's own deadline is not WeChat's fault")
	require.Less(t, time.Since(start), 2*time.Second)

	// Cancellation during the backoff between retries.
	e.sim.SetFaults(wechattest.Faults{Busy: 100})
	c2 := e.client(mpID, mpSecret)
	c2.RetryBackoff = 5 * time.Second
	ctx2, cancel2 := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel2)
	_, err = c2.Code2Session(ctx2, e.loginCode(t, mpID, "alice"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestClient_transportError(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	base := ts.URL
	ts.Close()
	c := &wechat.Client{AppID: mpID, AppSecret: mpSecret, Endpoint: wechat.Endpoint{APIURL: base}, RetryBackoff: time.Millisecond}
	_, err := c.Code2Session(t.Context(), "the-code")
	require.ErrorIs(t, err, wechat.ErrUnavailable)
	require.True(t, wechat.IsTemporary(err))
	requireNoSecrets(t, err, "the-code", base+"/sns")
}

func TestClient_httpStatusAndGarbage(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  wechat.Class
	}{
		{"502 from a gateway", http.StatusBadGateway, "<html>bad gateway</html>", wechat.ClassUnavailable},
		{"garbage", http.StatusOK, "<html>", wechat.ClassUnavailable},
		{"success without openid", http.StatusOK, `{"session_key":"x"}`, wechat.ClassUnavailable},
		{"errcode with 500", http.StatusInternalServerError, `{"errcode":-1,"errmsg":"system error"}`, wechat.ClassRetryLater},
		{"errcode 0 is success shape", http.StatusOK, `{"errcode":0,"errmsg":"ok"}`, wechat.ClassUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer ts.Close()
			c := &wechat.Client{AppID: mpID, AppSecret: mpSecret, Endpoint: wechat.Endpoint{APIURL: ts.URL}, RetryBackoff: time.Millisecond, MaxRetries: -1}
			_, err := c.Code2Session(t.Context(), "code")
			require.Error(t, err)
			require.Equal(t, tc.class, wechat.ClassOf(err), "err: %v", err)
		})
	}
}

func TestClient_ServerToken_fetchedOnce(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := e.sim.PhoneCode(mpID, "alice", "")
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.PhoneNumber(t.Context(), code, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, e.sim.Calls(wechat.PathStableToken))
	require.Equal(t, 100, e.sim.Calls(wechat.PathPhoneNumber))
}

// Two replicas (Clients) sharing one store fetch once, even concurrently.
func TestClient_ServerToken_sharedStore(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	e.sim.SetFaults(wechattest.Faults{Latency: 50 * time.Millisecond, Path: wechat.PathStableToken})
	store := wechat.NewMemoryTokenStore()
	a, b := e.client(mpID, mpSecret), e.client(mpID, mpSecret)
	a.Tokens, b.Tokens = store, store
	var ta, tb string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ta, _ = a.ServerToken(t.Context()) }()
	go func() { defer wg.Done(); tb, _ = b.ServerToken(t.Context()) }()
	wg.Wait()
	require.NotEmpty(t, ta)
	require.Equal(t, ta, tb)
	require.Equal(t, 1, e.sim.Calls(wechat.PathStableToken))

	// A third replica starting later loads it from the store.
	c := e.client(mpID, mpSecret)
	c.Tokens = store
	tc, err := c.ServerToken(t.Context())
	require.NoError(t, err)
	require.Equal(t, ta, tc)
	require.Equal(t, 1, e.sim.Calls(wechat.PathStableToken))
}

func TestMemoryTokenStore_compareAndSwap(t *testing.T) {
	ctx := t.Context()
	s := wechat.NewMemoryTokenStore()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.LoadToken(ctx, "app")
	require.ErrorIs(t, err, wechat.ErrNoToken)

	fresh := wechat.ServerToken{AccessToken: "fresh", ExpiresAt: t0.Add(2 * time.Hour)}
	stale := wechat.ServerToken{AccessToken: "stale", ExpiresAt: t0.Add(time.Hour)}
	got, err := s.SaveToken(ctx, "app", fresh)
	require.NoError(t, err)
	require.Equal(t, fresh, got)
	got, err = s.SaveToken(ctx, "app", stale)
	require.NoError(t, err)
	require.Equal(t, fresh, got, "a stale write loses")
	same := wechat.ServerToken{AccessToken: "same-expiry", ExpiresAt: fresh.ExpiresAt}
	got, _ = s.SaveToken(ctx, "app", same)
	require.Equal(t, fresh, got, "equal expiry keeps the stored token")

	require.NoError(t, s.DeleteToken(ctx, "app", stale.ExpiresAt))
	got, err = s.LoadToken(ctx, "app")
	require.NoError(t, err)
	require.Equal(t, fresh, got, "deleting by another expiry is a no-op")
	require.NoError(t, s.DeleteToken(ctx, "app", fresh.ExpiresAt))
	_, err = s.LoadToken(ctx, "app")
	require.ErrorIs(t, err, wechat.ErrNoToken)

	unlock, ok, err := s.LockToken(ctx, "app")
	require.NoError(t, err)
	require.True(t, ok)
	_, ok2, _ := s.LockToken(ctx, "app")
	require.False(t, ok2)
	unlock()
	unlock() // idempotent
	unlock3, ok3, _ := s.LockToken(ctx, "app")
	require.True(t, ok3)
	unlock3()
}

// A client that fetched a token older than the stored one adopts the
// stored one.
func TestClient_ServerToken_staleFetchLoses(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	store := wechat.NewMemoryTokenStore()
	future := wechat.ServerToken{AccessToken: "from-another-replica", ExpiresAt: e.clk.Now().Add(3 * time.Hour)}
	// Simulate a replica saving a later token while we fetch: store is
	// empty when we look, but holds a later token when we save.
	c := e.client(mpID, mpSecret)
	c.Tokens = &raceStore{MemoryTokenStore: store, beforeSave: func() { store.SaveToken(context.Background(), mpID, future) }}
	tok, err := c.ServerToken(t.Context())
	require.NoError(t, err)
	require.Equal(t, future.AccessToken, tok)
}

type raceStore struct {
	*wechat.MemoryTokenStore
	beforeSave func()
}

func (s *raceStore) SaveToken(ctx context.Context, appID string, tok wechat.ServerToken) (wechat.ServerToken, error) {
	s.beforeSave()
	return s.MemoryTokenStore.SaveToken(ctx, appID, tok)
}

// With the classic endpoint, two replicas that do not share a store stomp
// each other's token: the loser gets 40001, invalidates, refetches and
// retries once.
func TestClient_classicTokenStomping(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	a, b := e.client(mpID, mpSecret), e.client(mpID, mpSecret)
	a.UseClassicToken, b.UseClassicToken = true, true
	ta, err := a.ServerToken(t.Context())
	require.NoError(t, err)
	tb, err := b.ServerToken(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, ta, tb, "classic mints a new token on every call")

	// Within the 5-minute overlap A's old token still works.
	code, _ := e.sim.PhoneCode(mpID, "alice", "")
	_, err = a.PhoneNumber(t.Context(), code, "")
	require.NoError(t, err)
	require.Equal(t, 2, e.sim.Calls(wechat.PathToken))

	// After it, A's token is stale: 40001, refetch, retry once.
	e.clk.Advance(wechattest.TokenOverlap + time.Second)
	code, _ = e.sim.PhoneCode(mpID, "alice", "")
	p, err := a.PhoneNumber(t.Context(), code, "")
	require.NoError(t, err)
	require.Equal(t, "13800138001", p.PurePhoneNumber)
	require.Equal(t, 3, e.sim.Calls(wechat.PathToken))
	require.Equal(t, 3, e.sim.Calls(wechat.PathPhoneNumber))

	// And now B is the one holding the superseded token (still in overlap).
	code, _ = e.sim.PhoneCode(mpID, "alice", "")
	_, err = b.PhoneNumber(t.Context(), code, "")
	require.NoError(t, err)
	require.Equal(t, 3, e.sim.Calls(wechat.PathToken))
}

// Each stale-token code makes the client invalidate and retry exactly once.
func TestClient_staleTokenCodes(t *testing.T) {
	tests := []struct {
		name     string
		poison   func(e *env, store *wechat.MemoryTokenStore)
		wantCode int
	}{
		{"40014 unparseable", func(e *env, s *wechat.MemoryTokenStore) {
			s.SaveToken(context.Background(), mpID, wechat.ServerToken{AccessToken: "garbage!", ExpiresAt: e.clk.Now().Add(time.Hour)})
		}, wechat.CodeInvalidAccessToken},
		{"40001 unknown", func(e *env, s *wechat.MemoryTokenStore) {
			s.SaveToken(context.Background(), mpID, wechat.ServerToken{AccessToken: strings.Repeat("A", 40), ExpiresAt: e.clk.Now().Add(time.Hour)})
		}, wechat.CodeInvalidCredential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Config{})
			store := wechat.NewMemoryTokenStore()
			tc.poison(e, store)
			c := e.client(mpID, mpSecret)
			c.Tokens = store
			code, _ := e.sim.PhoneCode(mpID, "bob", "")
			_, err := c.PhoneNumber(t.Context(), code, "")
			require.NoError(t, err)
			require.Equal(t, 1, e.sim.Calls(wechat.PathStableToken))
			require.Equal(t, 2, e.sim.Calls(wechat.PathPhoneNumber))
		})
	}

	t.Run("42001 expired, client clock behind", func(t *testing.T) {
		e := newEnv(t, wechattest.Config{})
		c := e.client(mpID, mpSecret)
		clientClock := newClock()
		c.Now = clientClock.Now
		_, err := c.ServerToken(t.Context())
		require.NoError(t, err)
		e.clk.Advance(wechattest.ServerTokenTTL + time.Second) // WeChat's clock only
		code, _ := e.sim.PhoneCode(mpID, "bob", "")
		_, err = c.PhoneNumber(t.Context(), code, "")
		require.NoError(t, err)
		require.Equal(t, 2, e.sim.Calls(wechat.PathStableToken))
		require.Equal(t, 2, e.sim.Calls(wechat.PathPhoneNumber))
	})

	t.Run("retried once only", func(t *testing.T) {
		e := newEnv(t, wechattest.Config{})
		c := e.client(mpID, mpSecret)
		e.sim.SetFaults(wechattest.Faults{Errcode: wechat.CodeAccessTokenExpired, ErrcodeCount: 10, Path: wechat.PathPhoneNumber})
		code, _ := e.sim.PhoneCode(mpID, "bob", "")
		_, err := c.PhoneNumber(t.Context(), code, "")
		require.True(t, wechat.IsStaleToken(err))
		require.Equal(t, 2, e.sim.Calls(wechat.PathPhoneNumber))
	})
}

func TestClient_ServerToken_refreshAhead(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	t1, err := c.ServerToken(t.Context())
	require.NoError(t, err)
	e.clk.Advance(time.Hour)
	t2, _ := c.ServerToken(t.Context())
	require.Equal(t, t1, t2)
	require.Equal(t, 1, e.sim.Calls(wechat.PathStableToken))
	// Less than 4 minutes left: refresh; WeChat has rolled the stable token.
	e.clk.Advance(time.Hour - 3*time.Minute)
	t3, err := c.ServerToken(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, t1, t3)
	require.Equal(t, 2, e.sim.Calls(wechat.PathStableToken))
}

func TestClient_ServerToken_errors(t *testing.T) {
	tests := []struct {
		name    string
		classic bool
		faults  wechattest.Faults
		want    int
	}{
		{"stable wrong secret", false, wechattest.Faults{WrongSecret: true}, wechat.CodeInvalidAppSecret},
		{"classic wrong secret is 40001 but misconfigured", true, wechattest.Faults{WrongSecret: true}, wechat.CodeInvalidCredential},
		{"ip whitelist", false, wechattest.Faults{Errcode: wechat.CodeIPNotAllowed, ErrcodeCount: 5}, wechat.CodeIPNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Config{})
			e.sim.SetFaults(tc.faults)
			c := e.client(mpID, mpSecret)
			c.UseClassicToken = tc.classic
			_, err := c.ServerToken(t.Context())
			var ae *wechat.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.want, ae.Code)
			require.True(t, wechat.IsMisconfigured(err))
			requireNoSecrets(t, err)
		})
	}
}

func TestClient_PhoneNumber(t *testing.T) {
	e := newEnv(t, wechattest.Config{})
	c := e.client(mpID, mpSecret)
	code, err := e.sim.PhoneCode(mpID, "carol", "")
	require.NoError(t, err)
	p, err := c.PhoneNumber(t.Context(), code, "")
	require.NoError(t, err)
	require.Equal(t, wechat.PhoneInfo{PhoneNumber: "13800138003", PurePhoneNumber: "13800138003", CountryCode: "86",
		Watermark: wechat.Watermark{AppID: mpID, Timestamp: e.clk.Now().Unix()}}, *p)

	// Used again: 40029, as the phone API documents.
	_, err = c.PhoneNumber(t.Context(), code, "")
	require.True(t, wechat.IsInvalidCode(err))

	// A wx.login code is the wrong kind of code.
	_, err = c.PhoneNumber(t.Context(), e.loginCode(t, mpID, "carol"), "")
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeInvalidCode, ae.Code)

	code, _ = e.sim.PhoneCode(mpID, "carol", "+1-4155550100")
	p, err = c.PhoneNumber(t.Context(), code, "")
	require.NoError(t, err)
	require.Equal(t, "1", p.CountryCode)
	require.Equal(t, "4155550100", p.PurePhoneNumber)

	// With the caller's openid, WeChat redeems only carol's code for
	// carol.
	code, _ = e.sim.PhoneCode(mpID, "carol", "")
	_, err = c.PhoneNumber(t.Context(), code, e.sim.OpenID(mpID, "dave"))
	require.True(t, wechat.IsInvalidCode(err), "carol's code with dave's openid")
	p, err = c.PhoneNumber(t.Context(), code, e.sim.OpenID(mpID, "carol"))
	require.NoError(t, err)
	require.Equal(t, "13800138003", p.PurePhoneNumber)

	code, _ = e.sim.PhoneCode(mpID, "carol", "")
	e.clk.Advance(wechattest.PhoneCodeTTL + time.Second)
	_, err = c.PhoneNumber(t.Context(), code, "")
	require.True(t, wechat.IsInvalidCode(err))
}

func TestClient_CheckSession(t *testing.T) {
	e := newEnv(t, wechattest.Config{RotateSessionKeyOnLogin: true})
	c := e.client(mpID, mpSecret)
	s, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	require.NoError(t, c.CheckSession(t.Context(), s.OpenID, s.SessionKey))

	// wx.login again: the key rotates and the old one fails.
	s2, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	require.NotEqual(t, s.SessionKey, s2.SessionKey)
	err = c.CheckSession(t.Context(), s.OpenID, s.SessionKey)
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeInvalidSignature, ae.Code)
	requireNoSecrets(t, err, s.SessionKey)
	require.NoError(t, c.CheckSession(t.Context(), s2.OpenID, s2.SessionKey))

	err = c.CheckSession(t.Context(), "o-not-a-user", s2.SessionKey)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeInvalidOpenID, ae.Code)
}

// noRedirect is an HTTP client that returns redirects instead of following.
func noRedirect(ts *httptest.Server) *http.Client {
	c := *ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func authorize(t *testing.T, e *env, authURL, ua string) *url.URL {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := noRedirect(e.ts).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

const wechatUA = "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"

func TestClient_websiteLogin(t *testing.T) {
	e := newEnv(t, wechattest.Config{AutoConfirm: "alice"})
	c := e.client(webID, webSecret)
	loc := authorize(t, e, c.AuthCodeURL(wechat.KindWebsite, "https://rp.example/cb?x=1", "", "st4te"), "")
	require.Equal(t, "rp.example", loc.Host)
	require.Equal(t, "st4te", loc.Query().Get("state"))
	require.Equal(t, "1", loc.Query().Get("x"))

	tok, err := c.Exchange(t.Context(), loc.Query().Get("code"))
	require.NoError(t, err)
	require.Equal(t, e.sim.OpenID(webID, "alice"), tok.OpenID)
	require.NotEqual(t, e.sim.OpenID(mpID, "alice"), tok.OpenID, "openid differs per app")
	require.Equal(t, e.sim.UnionID(mpID, "alice"), tok.UnionID, "unionid shared across the platform")
	require.Equal(t, wechat.ScopeLogin, tok.Scope)
	require.False(t, tok.Snapshot())
	require.Equal(t, e.clk.Now().Add(2*time.Hour), tok.Expiry)

	u, err := c.UserInfo(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, "Alice", u.Nickname)
	require.Equal(t, tok.UnionID, u.UnionID)
	require.Equal(t, 0, u.Sex)

	_, err = c.Exchange(t.Context(), loc.Query().Get("code"))
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeCodeUsed, ae.Code)

	tok2, err := c.Refresh(t.Context(), tok.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, tok.AccessToken, tok2.AccessToken, "refreshing an unexpired token extends it")

	// Website codes live 10 minutes.
	loc = authorize(t, e, c.AuthCodeURL(wechat.KindWebsite, "https://rp.example/cb", "", "s"), "")
	e.clk.Advance(wechattest.WebsiteCodeTTL + time.Second)
	_, err = c.Exchange(t.Context(), loc.Query().Get("code"))
	require.True(t, wechat.IsInvalidCode(err))
}

func TestClient_officialAccountLogin(t *testing.T) {
	e := newEnv(t, wechattest.Config{AutoConfirm: "bob"})
	c := e.client(oaID, oaSecret)

	// snsapi_base: openid only, no userinfo.
	loc := authorize(t, e, c.AuthCodeURL(wechat.KindOfficial, "https://m.example/cb", wechat.ScopeBase, "s1"), wechatUA)
	tok, err := c.Exchange(t.Context(), loc.Query().Get("code"))
	require.NoError(t, err)
	require.Equal(t, e.sim.OpenID(oaID, "bob"), tok.OpenID)
	require.Empty(t, tok.UnionID, "no unionid with snsapi_base")
	_, err = c.UserInfo(t.Context(), tok)
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeUnauthorized, ae.Code)

	// snsapi_userinfo: unionid and profile.
	loc = authorize(t, e, c.AuthCodeURL(wechat.KindOfficial, "https://m.example/cb", wechat.ScopeUserInfo, "s2"), wechatUA)
	tok, err = c.Exchange(t.Context(), loc.Query().Get("code"))
	require.NoError(t, err)
	require.Equal(t, e.sim.UnionID(oaID, "bob"), tok.UnionID)
	u, err := c.UserInfo(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, "Bob", u.Nickname)

	// A snapshot-mode visitor gets virtual ids.
	e.sim.SetAutoConfirm("snapshot")
	loc = authorize(t, e, c.AuthCodeURL(wechat.KindOfficial, "https://m.example/cb", wechat.ScopeUserInfo, "s3"), wechatUA)
	tok, err = c.Exchange(t.Context(), loc.Query().Get("code"))
	require.NoError(t, err)
	require.True(t, tok.Snapshot())
	require.NotEqual(t, e.sim.OpenID(oaID, "snapshot"), tok.OpenID)
	require.NotEqual(t, e.sim.UnionID(oaID, "snapshot"), tok.UnionID)

	// OA codes live 5 minutes and expire with 42003.
	e.sim.SetAutoConfirm("bob")
	loc = authorize(t, e, c.AuthCodeURL(wechat.KindOfficial, "https://m.example/cb", "", "s4"), wechatUA)
	e.clk.Advance(wechattest.OfficialCodeTTL + time.Second)
	_, err = c.Exchange(t.Context(), loc.Query().Get("code"))
	require.ErrorAs(t, err, &ae)
	require.Equal(t, wechat.CodeCodeExpired, ae.Code)
	require.True(t, wechat.IsInvalidCode(err))
}

func TestClient_AuthCodeURL(t *testing.T) {
	c := &wechat.Client{AppID: "wx3f7c2a9e51b04d86"}
	require.Equal(t,
		"https://open.weixin.qq.com/connect/qrconnect?appid=wx3f7c2a9e51b04d86&redirect_uri=https%3A%2F%2Fidp.example.com%2Fcb%3Fa%3D1&response_type=code&scope=snsapi_login&state=n7Rk2Qx9#wechat_redirect",
		c.AuthCodeURL(wechat.KindWebsite, "https://idp.example.com/cb?a=1", "", "n7Rk2Qx9"))
	c.Endpoint = wechat.Endpoint{OpenURL: "http://127.0.0.1:8080/wechat-sim/"}
	require.Equal(t,
		"http://127.0.0.1:8080/wechat-sim/connect/oauth2/authorize?appid=wx3f7c2a9e51b04d86&redirect_uri=https%3A%2F%2Fm.example%2Fcb&response_type=code&scope=snsapi_userinfo&state=Qw3rTy#wechat_redirect",
		c.AuthCodeURL(wechat.KindOfficial, "https://m.example/cb", wechat.ScopeUserInfo, "Qw3rTy"))
}

// The simulator mounted under a prefix, as wxoidc dev does.
func TestClient_simulatorUnderPrefix(t *testing.T) {
	clk := newClock()
	sim := wechattest.New(wechattest.Config{Now: clk.Now, AutoConfirm: "carol"})
	mux := http.NewServeMux()
	mux.Handle("/wechat-sim/", http.StripPrefix("/wechat-sim", sim))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	ep := wechat.Endpoint{APIURL: ts.URL + "/wechat-sim", OpenURL: ts.URL + "/wechat-sim"}

	mp := &wechat.Client{AppID: mpID, AppSecret: mpSecret, Endpoint: ep, Now: clk.Now}
	code, _ := sim.LoginCode(mpID, "carol")
	s, err := mp.Code2Session(t.Context(), code)
	require.NoError(t, err)
	require.Equal(t, sim.OpenID(mpID, "carol"), s.OpenID)

	web := &wechat.Client{AppID: webID, AppSecret: webSecret, Endpoint: ep, Now: clk.Now}
	resp, err := noRedirect(ts).Get(web.AuthCodeURL(wechat.KindWebsite, "https://rp.example/cb", "", "x"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := web.Exchange(t.Context(), loc.Query().Get("code"))
	require.NoError(t, err)
	require.Equal(t, s.UnionID, tok.UnionID)
}

func TestAPIError_Class(t *testing.T) {
	tests := []struct {
		code int
		op   string
		want wechat.Class
	}{
		{40029, "", wechat.ClassInvalidCode}, {40163, "", wechat.ClassInvalidCode}, {40226, "", wechat.ClassInvalidCode}, {42003, "", wechat.ClassInvalidCode},
		{-1, "", wechat.ClassRetryLater}, {45011, "", wechat.ClassRetryLater}, {45009, "", wechat.ClassRetryLater},
		{40013, "", wechat.ClassMisconfigured}, {40125, "", wechat.ClassMisconfigured}, {40164, "", wechat.ClassMisconfigured}, {40243, "", wechat.ClassMisconfigured},
		{40001, "", wechat.ClassStaleToken}, {40014, "", wechat.ClassStaleToken}, {42001, "", wechat.ClassStaleToken},
		{40001, "token", wechat.ClassMisconfigured}, {40001, "stable_token", wechat.ClassMisconfigured},
		{87009, "", wechat.ClassOther}, {48001, "", wechat.ClassOther},
	}
	for _, tc := range tests {
		e := &wechat.APIError{Code: tc.code, Op: tc.op}
		require.Equal(t, tc.want, e.Class(), "code %d op %q", tc.code, tc.op)
		require.Equal(t, tc.want, wechat.ClassOf(fmt.Errorf("wrapped: %w", e)))
	}
	require.Equal(t, wechat.ClassOther, wechat.ClassOf(nil))
	require.Equal(t, wechat.ClassOther, wechat.ClassOf(errors.New("x")))
	require.Equal(t, "invalid_code", wechat.ClassInvalidCode.String())
}
