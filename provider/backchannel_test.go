package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// logoutRP is a relying party's back-channel logout endpoint that checks
// every logout token as OpenID Connect Back-Channel Logout 1.0 §2.6 asks.
type logoutRP struct {
	t        testing.TB
	srv      *httptest.Server
	keys     *oidc.RemoteKeySet
	issuer   string
	clientID string
	down     atomic.Bool  // answer 503, as a relying party that is down
	refused  atomic.Int32 // attempts answered while down
	mu       sync.Mutex
	jtis     map[string]bool
	sids     []string // of the verified tokens, in arrival order
}

func newLogoutRP(t testing.TB, e *env, clientID string) *logoutRP {
	rp := &logoutRP{t: t, issuer: e.issuer, clientID: clientID, jtis: map[string]bool{},
		keys: oidc.NewRemoteKeySet(e.ctx, e.issuer+"/.well-known/jwks.json")}
	rp.srv = httptest.NewServer(http.HandlerFunc(rp.serve))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *logoutRP) serve(w http.ResponseWriter, r *http.Request) {
	if rp.down.Load() {
		rp.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if ct := r.Header.Get("Content-Type"); r.Method != http.MethodPost || ct != "application/x-www-form-urlencoded" {
		rp.t.Errorf("logout request: %s with Content-Type %q", r.Method, ct)
	}
	token := r.PostFormValue("logout_token")
	if err := rp.verify(r.Context(), token); err != nil {
		rp.t.Errorf("logout token refused: %v", err)
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// verify applies §2.6: signature from the JWKS, typ, iss, aud, iat, exp,
// events, sid or sub, no nonce, and a jti not seen before.
func (rp *logoutRP) verify(ctx context.Context, token string) error {
	payload, err := rp.keys.VerifySignature(ctx, token)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct {
		Typ string `json:"typ"`
	}
	json.Unmarshal(hdr, &h)
	if h.Typ != "logout+jwt" {
		return fmt.Errorf("typ %q", h.Typ)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return err
	}
	now := float64(time.Now().Unix())
	switch {
	case c["iss"] != rp.issuer:
		return fmt.Errorf("iss %v", c["iss"])
	case c["aud"] != rp.clientID && !slices.Contains(anySlice(c["aud"]), any(rp.clientID)):
		return fmt.Errorf("aud %v", c["aud"])
	case c["iat"] == nil || c["iat"].(float64) > now+5:
		return fmt.Errorf("iat %v", c["iat"])
	case c["exp"] == nil || c["exp"].(float64) < now || c["exp"].(float64) > now+300:
		return fmt.Errorf("exp %v", c["exp"])
	case c["nonce"] != nil:
		return fmt.Errorf("carries a nonce")
	case c["sid"] == nil || c["sub"] == nil:
		return fmt.Errorf("sid %v, sub %v: this client requires both", c["sid"], c["sub"])
	}
	events, _ := c["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok {
		return fmt.Errorf("events %v", c["events"])
	}
	jti, _ := c["jti"].(string)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if jti == "" || rp.jtis[jti] {
		return fmt.Errorf("jti %q missing or replayed", jti)
	}
	rp.jtis[jti] = true
	rp.sids = append(rp.sids, c["sid"].(string))
	return nil
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

// waitFor waits until the relying party has verified a logout of each
// sid, and fails if any sid was delivered more than once.
func (rp *logoutRP) waitFor(t *testing.T, sids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rp.mu.Lock()
		got := slices.Clone(rp.sids)
		rp.mu.Unlock()
		done := true
		for _, sid := range sids {
			switch n := countOf(got, sid); {
			case n > 1:
				t.Fatalf("sid %s delivered %d times", sid, n)
			case n == 0:
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logouts of %v not delivered; got %v", sids, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countOf(s []string, v string) (n int) {
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// sessionAuth is the test authenticator with a browser session id.
type sessionAuth struct {
	staticAuth
	sid atomic.Value // string
}

func (a *sessionAuth) Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*provider.Authentication, error) {
	auth, err := a.staticAuth.Authenticate(w, r, ar)
	if auth != nil {
		auth.SID = a.sid.Load().(string)
		auth.SessionExpiresAt = time.Now().Add(time.Hour)
	}
	return auth, err
}

// TestBackchannelLogout: a relying party receives and verifies logout
// tokens after RP-initiated logout, sign out everywhere and a user
// disabled; delivery outlasts the
// relying party being down; three replicas deliver each logout once.
func TestBackchannelLogout(t *testing.T) {
	auth := &sessionAuth{staticAuth: staticAuth{subject: testSubject}}
	auth.sid.Store("")
	e := newEnv(t, func(c *provider.Config) {
		c.Authenticator = auth
		c.Backchannel = provider.BackchannelConfig{PollInterval: 20 * time.Millisecond, MinBackoff: 100 * time.Millisecond}
	})
	const bclClient, bclSecret = "bcl-rp", "bcl-secret-0123456789abcdef0123456789abcd"
	rp := newLogoutRP(t, e, bclClient)
	c := storage.Client{
		ID: bclClient, SecretHash: provider.HashClientSecret(testSecret, bclSecret),
		RedirectURIs: []string{webRedirect}, PostLogoutRedirectURIs: []string{webLogout},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		BackchannelLogoutURI: rp.srv.URL + "/backchannel", BackchannelLogoutSessionRequired: true,
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
	if err := provider.ValidateClient(c, false); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateClient(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	// Three replicas' delivery workers; the lease lets one deliver.
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	for i := range 3 {
		workers.Go(func() { e.p.RunBackchannelLogout(ctx, fmt.Sprintf("replica-%d", i)) })
	}
	t.Cleanup(func() { cancel(); workers.Wait() })

	cfg := e.oauth2Config(bclClient, bclSecret, webRedirect, "openid")
	signIn := func(sid string) string {
		t.Helper()
		auth.sid.Store(sid)
		tok, err := cfg.Exchange(e.ctx, e.authorize(cfg.AuthCodeURL("state-0123456789")).Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		idt, err := e.provider.Verifier(&oidc.Config{ClientID: bclClient}).Verify(e.ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			SID string `json:"sid"`
		}
		idt.Claims(&claims)
		if claims.SID != sid {
			t.Fatalf("ID token sid %q, want %q", claims.SID, sid)
		}
		return raw
	}
	logout := func(idToken string) {
		t.Helper()
		resp, err := e.client.Get(e.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {webLogout}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
	}

	t.Run("RP-initiated logout", func(t *testing.T) {
		logout(signIn("sid-rp-initiated"))
		rp.waitFor(t, "sid-rp-initiated")
	})
	t.Run("sign out everywhere", func(t *testing.T) {
		signIn("sid-phone")
		signIn("sid-laptop")
		if err := e.store.EndUserSessions(e.ctx, testSubject); err != nil {
			t.Fatal(err)
		}
		rp.waitFor(t, "sid-phone", "sid-laptop")
	})
	t.Run("user disabled", func(t *testing.T) {
		signIn("sid-before-disable")
		if err := e.store.SetUserDisabled(e.ctx, testSubject, true); err != nil {
			t.Fatal(err)
		}
		rp.waitFor(t, "sid-before-disable")
		if err := e.store.SetUserDisabled(e.ctx, testSubject, false); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the relying party is down for a while", func(t *testing.T) {
		rp.down.Store(true)
		logout(signIn("sid-while-down"))
		deadline := time.Now().Add(5 * time.Second)
		for rp.refused.Load() < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d attempts while the relying party was down", rp.refused.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
		rp.down.Store(false)
		rp.waitFor(t, "sid-while-down")
	})
	t.Run("a session without this client sends nothing", func(t *testing.T) {
		auth.sid.Store("sid-other-client")
		web := e.oauth2Config(webClient, webSecret, webRedirect, "openid")
		if _, err := web.Exchange(e.ctx, e.authorize(web.AuthCodeURL("state-0123456789")).Query().Get("code")); err != nil {
			t.Fatal(err)
		}
		if n, err := e.store.EnqueueSessionLogouts(e.ctx, "sid-other-client", time.Now(), time.Now().Add(time.Minute)); err != nil || n != 0 {
			t.Fatalf("a client without backchannel_logout_uri was recorded: %d %v", n, err)
		}
	})
	// Each logout once, every attempt in the log.
	time.Sleep(200 * time.Millisecond)
	rp.waitFor(t, "sid-rp-initiated", "sid-phone", "sid-laptop", "sid-before-disable", "sid-while-down")
	events, _, err := e.store.Events(e.ctx, storage.EventQuery{Type: storage.EventBackchannelLogout, ClientID: bclClient, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, ev := range events {
		outcomes[ev.Details["outcome"].(string)]++
	}
	if outcomes["delivered"] != 5 || outcomes["failed"] < 3 || len(outcomes) != 2 {
		t.Errorf("audit trail of deliveries: %v, want 5 delivered and at least 3 failed", outcomes)
	}
	logs := e.logs.String()
	if strings.Contains(logs, "logout_token") || strings.Contains(logs, "eyJ") {
		t.Error("a logout token reached the log")
	}
}
