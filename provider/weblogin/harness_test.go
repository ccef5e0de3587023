package weblogin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-only")

const (
	firstParty       = "first"
	firstSecret      = "first-secret-0123456789abcdef01234567"
	firstRedirect    = "https://first.example/callback"
	firstLogout      = "https://first.example/signed-out"
	thirdParty       = "third"
	thirdSecret      = "third-secret-0123456789abcdef01234567"
	thirdRedirect    = "https://third.example/callback"
	tvClient         = "tv"
	miniClient       = "mini"
	miniApp          = "wxd0000000000000a1"
	websiteApp       = "wxd0000000000000b2"
	officialApp      = "wxd0000000000000c3"
	wechatUA         = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
	desktopUA        = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	stateFromTheTest = "client-state-0123456789"
)

// env is a provider with web login served by two replicas on one SQLite
// database, requests alternating between them, so that every step must
// find its state in storage; and the WeChat simulator.
type env struct {
	t        *testing.T
	store    storage.Storage
	sim      *wechattest.Server
	simURL   string
	issuer   string
	provider *oidc.Provider
	ctx      context.Context
	auths    []*weblogin.Authenticator // the replicas' login steps
}

// newEnv builds the env; opts adjust the web login's configuration.
func newEnv(t *testing.T, opts ...func(*weblogin.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with popt, when set, adjusting the providers'
// configuration.
func newEnvWith(t *testing.T, popt func(*provider.Config), opts ...func(*weblogin.Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	sim := wechattest.New(wechattest.Config{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)

	var replicas [2]http.Handler
	var auths []*weblogin.Authenticator
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replicas[n.Add(1)%2].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	for i := range replicas {
		km, err := keys.New(store, keys.Config{Secret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		if err := km.Load(ctx); err != nil {
			t.Fatal(err)
		}
		apps := map[string]provider.WeChatApp{}
		for _, a := range wechattest.DevApps() {
			apps[a.AppID] = provider.WeChatApp{Kind: a.Kind, Client: &wechat.Client{
				AppID: a.AppID, AppSecret: a.Secret,
				Endpoint: wechat.Endpoint{APIURL: simSrv.URL, OpenURL: simSrv.URL},
			}}
		}
		cfg := weblogin.Config{
			Issuer: srv.URL, Storage: store, WeChatApps: apps, Secret: testSecret, Dev: true,
		}
		for _, o := range opts {
			o(&cfg)
		}
		auth, err := weblogin.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, auth)
		pcfg := provider.Config{
			Issuer: srv.URL, Secret: testSecret, Storage: store, Keys: km, Authenticator: auth,
			WeChatApps: apps, Dev: true, Users: cfg.Users,
		}
		if popt != nil {
			popt(&pcfg)
		}
		p, err := provider.New(pcfg)
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = p.Handler()
	}
	e := &env{t: t, store: store, sim: sim, simURL: simSrv.URL, issuer: srv.URL, auths: auths}
	e.seed()
	e.ctx = oidc.ClientContext(ctx, srv.Client())
	e.provider, err = oidc.NewProvider(e.ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) seed() {
	now := time.Now().UTC()
	all := []string{"openid", "profile", "phone", "wechat", "offline_access"}
	for _, c := range []storage.Client{
		{
			ID: firstParty, Name: "First", SecretHash: provider.HashClientSecret(testSecret, firstSecret),
			RedirectURIs: []string{firstRedirect}, PostLogoutRedirectURIs: []string{firstLogout},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: all, TokenEndpointAuthMethod: storage.AuthMethodBasic, SkipConsent: true,
		},
		{
			ID: thirdParty, Name: "Third Party App", SecretHash: provider.HashClientSecret(testSecret, thirdSecret),
			RedirectURIs: []string{thirdRedirect},
			GrantTypes:   []string{"authorization_code"}, ResponseTypes: []string{"code"},
			Scopes: all, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		},
		{
			ID: tvClient, Name: "Living-room TV", GrantTypes: []string{provider.GrantTypeDeviceCode},
			Scopes: all, TokenEndpointAuthMethod: storage.AuthMethodNone,
		},
		{
			ID: miniClient, GrantTypes: []string{provider.GrantTypeWeChat}, Scopes: all,
			TokenEndpointAuthMethod: storage.AuthMethodNone, WeChatAppID: miniApp,
		},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := provider.ValidateClient(c, true); err != nil {
			e.t.Fatalf("client %s: %v", c.ID, err)
		}
		if err := e.store.CreateClient(context.Background(), c); err != nil {
			e.t.Fatal(err)
		}
	}
}

// browser is a cookie-keeping user agent that does not follow redirects.
type browser struct {
	e  *env
	c  *http.Client
	ua string
}

func (e *env) browser(ua string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, ua: ua, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status   int
	location *url.URL // resolved Location, if any
	body     string
	url      *url.URL
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	req.Header.Set("User-Agent", b.ua)
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(body), url: req.URL}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := req.URL.Parse(loc)
		if err != nil {
			b.e.t.Fatal(err)
		}
		p.location = u
	}
	return p
}

func (b *browser) get(u string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values, header http.Header) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return b.do(req)
}

// follow follows redirects from u until a page is served, or the next hop
// leaves both the provider and the simulator (the client's redirect URI),
// or it reaches a WeChat page and the simulator does not auto-confirm.
// It returns the last response and the URLs visited.
func (b *browser) follow(u string) (page, []string) {
	b.e.t.Helper()
	var seen []string
	p := b.get(u)
	seen = append(seen, u)
	for range 20 {
		if p.location == nil {
			return p, seen
		}
		next := p.location.String()
		if !strings.HasPrefix(next, b.e.issuer) && !strings.HasPrefix(next, b.e.simURL) {
			return p, seen
		}
		seen = append(seen, next)
		p = b.get(next)
	}
	b.e.t.Fatalf("redirect loop: %v", seen)
	return p, seen
}

func (e *env) config(clientID, secret, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: e.provider.Endpoint(), Scopes: scopes,
	}
}

// authURL is an authorization URL of conf with PKCE and extra parameters.
func authURL(conf *oauth2.Config, verifier string, extra ...string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-0123456789")}
	for i := 0; i+1 < len(extra); i += 2 {
		opts = append(opts, oauth2.SetAuthURLParam(extra[i], extra[i+1]))
	}
	return conf.AuthCodeURL(stateFromTheTest, opts...)
}

// redeem checks that p redirects to the client with a code and returns the
// verified ID token.
func (e *env) redeem(conf *oauth2.Config, verifier string, p page) *oidc.IDToken {
	e.t.Helper()
	if p.location == nil || !strings.HasPrefix(p.location.String(), conf.RedirectURL) {
		e.t.Fatalf("want a redirect to %s, got status %d location %v body %.300s", conf.RedirectURL, p.status, p.location, p.body)
	}
	q := p.location.Query()
	if q.Get("code") == "" || q.Get("state") != stateFromTheTest {
		e.t.Fatalf("authorization response %v", q)
	}
	tok, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(e.ctx, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return idt
}

// clientError checks that p redirects to the client with error code want.
func (e *env) clientError(redirect string, p page, want string) {
	e.t.Helper()
	if p.location == nil || !strings.HasPrefix(p.location.String(), redirect) {
		e.t.Fatalf("want an error redirect to %s, got status %d location %v body %.300s", redirect, p.status, p.location, p.body)
	}
	q := p.location.Query()
	if q.Get("error") != want || q.Get("state") != stateFromTheTest || q.Get("iss") != e.issuer {
		e.t.Fatalf("error response %v: want error %s with state and iss", q, want)
	}
}

// miniProgramSub signs user in through the Mini Program grant and returns
// the sub.
func (e *env) miniProgramSub(user string) string {
	e.t.Helper()
	code, err := e.sim.LoginCode(miniApp, user)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.PostForm(e.issuer+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {miniClient}, "js_code": {code}, "scope": {"openid"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.IDToken == "" {
		e.t.Fatalf("wechat grant: status %d error %q", resp.StatusCode, body.Error)
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: miniClient}).Verify(e.ctx, body.IDToken)
	if err != nil {
		e.t.Fatal(err)
	}
	return idt.Subject
}
