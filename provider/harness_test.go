package provider_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// testSecret is the system secret of every test provider.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test-only")

// Test clients.
const (
	webClient       = "web"
	webSecret       = "web-secret-0123456789abcdef0123456789"
	webRedirect     = "https://rp.example/callback"
	webLogout       = "https://rp.example/signed-out"
	spaClient       = "spa"
	spaRedirect     = "https://spa.example/callback"
	serviceClient   = "service"
	serviceSecret   = "service-secret-0123456789abcdef01234567"
	resourceClient  = "resource-server"
	resourceSecret  = "resource-secret-0123456789abcdef0123456"
	testSubject     = "user-alice"
	testUnionID     = "union-alice"
	allScopes       = "openid profile phone wechat offline_access"
	testPhoneNumber = "+8613800138000"
	miniClient      = "mini"
	miniClient2     = "mini2"
	miniApp         = "wxd0000000000000a1"
	miniApp2        = "wxd0000000000000d4"
	tvClient        = "tv"
	tvName          = "Living-room TV"
)

// clock is a settable clock for the key manager.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// staticAuth is the test authenticator: everyone is alice, who logged in
// at loginTime.
type staticAuth struct {
	subject string
	ended   chan struct{}
}

func (a *staticAuth) Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*provider.Authentication, error) {
	return &provider.Authentication{Subject: a.subject, AuthTime: time.Now().Add(-time.Minute), AMR: []string{"test"}}, nil
}

func (a *staticAuth) EndSession(w http.ResponseWriter, r *http.Request) error {
	select {
	case a.ended <- struct{}{}:
	default:
	}
	return nil
}

// env is a running provider over TLS, on SQLite, with its relying-party
// tooling.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	store    storage.Storage
	keys     *keys.Manager
	clock    *clock
	auth     *staticAuth
	issuer   string
	client   *http.Client // trusts the server, does not follow redirects
	ctx      context.Context
	provider *oidc.Provider
	sim      *wechattest.Server
	simURL   string
	simSrv   *httptest.Server // the simulator's listener; close it for a WeChat outage
	logs     *syncBuffer      // everything the provider and its WeChat clients logged
	p        *provider.Provider
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOption func(*provider.Config)

// newEnv starts a provider over TLS (https issuer, production settings).
func newEnv(t testing.TB, opts ...envOption) *env { return startEnv(t, true, nil, opts...) }

// newPlainEnv starts a provider over plain HTTP (dev mode, for an http
// issuer): benchmarks use it so they measure the provider, not TLS.
func newPlainEnv(t testing.TB, opts ...envOption) *env {
	return newPlainEnvOn(t, nil, opts...)
}

// newPlainEnvOn is newPlainEnv on the given storage (nil: a fresh SQLite
// file).
func newPlainEnvOn(t testing.TB, store storage.Storage, opts ...envOption) *env {
	return startEnv(t, false, store, append(opts, func(c *provider.Config) { c.Dev = true })...)
}

func startEnv(t testing.TB, useTLS bool, store storage.Storage, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	if store == nil {
		s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wxoidc.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		store = s
	}
	t.Cleanup(func() { store.Close() })

	clk := &clock{now: time.Now()}
	km, err := keys.New(store, keys.Config{
		Secret:       testSecret,
		PublishDelay: 10 * time.Minute,
		Retention:    24 * time.Hour,
		Now:          clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}

	var h http.Handler
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	srv := httptest.NewUnstartedServer(handler)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)

	// The WeChat simulator, with a second Mini Program of the same Open
	// Platform account.
	sim := wechattest.New(wechattest.Config{RotateSessionKeyOnLogin: true, Apps: append(wechattest.DevApps(), wechattest.App{
		AppID: miniApp2, Secret: "second-miniprogram-secret", Kind: wechat.KindMiniProgram, Platform: wechattest.DevPlatform,
	})})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokens, err := provider.NewTokenStore(store, testSecret, "test")
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]provider.WeChatApp{}
	for _, a := range []struct{ id, secret string }{{miniApp, "dev-miniprogram-secret"}, {miniApp2, "second-miniprogram-secret"}} {
		apps[a.id] = provider.WeChatApp{Kind: wechat.KindMiniProgram, Client: &wechat.Client{
			AppID: a.id, AppSecret: a.secret, Tokens: tokens, Logger: logger,
			Endpoint: wechat.Endpoint{APIURL: simSrv.URL, OpenURL: simSrv.URL},
		}}
	}

	auth := &staticAuth{subject: testSubject, ended: make(chan struct{}, 1)}
	cfg := provider.Config{
		Issuer:        srv.URL,
		Secret:        testSecret,
		Storage:       store,
		Keys:          km,
		Authenticator: auth,
		WeChatApps:    apps,
		Logger:        logger,
		// Every test request comes from 127.0.0.1; tests of the limit set
		// their own.
		GrantLimitPerIP: provider.RateLimit{Rate: -1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h = p.Handler()

	e := &env{t: t, srv: srv, store: store, keys: km, clock: clk, auth: auth, issuer: srv.URL, sim: sim, simURL: simSrv.URL, simSrv: simSrv, logs: logs, p: p}
	noRedirect := *srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.client = &noRedirect
	e.ctx = oidc.ClientContext(ctx, srv.Client())
	e.seed()
	e.provider, err = oidc.NewProvider(e.ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// seed registers the test clients and alice.
func (e *env) seed() {
	ctx := context.Background()
	now := time.Now().UTC()
	for _, c := range []storage.Client{
		{
			ID: webClient, SecretHash: provider.HashClientSecret(testSecret, webSecret),
			RedirectURIs: []string{webRedirect}, PostLogoutRedirectURIs: []string{webLogout},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: []string{"openid", "profile", "phone", "wechat", "offline_access"}, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		},
		{
			ID: spaClient, RedirectURIs: []string{spaRedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: []string{"openid", "profile", "offline_access"}, TokenEndpointAuthMethod: storage.AuthMethodNone,
			IDTokenSignedResponseAlg: "ES256",
		},
		{
			ID: serviceClient, SecretHash: provider.HashClientSecret(testSecret, serviceSecret),
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders.read", "orders.write"},
			Audience: []string{resourceClient}, TokenEndpointAuthMethod: storage.AuthMethodPost,
		},
		{
			ID: miniClient, GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"},
			Scopes: []string{"openid", "profile", "phone", "wechat", "offline_access"}, TokenEndpointAuthMethod: storage.AuthMethodNone,
			IDTokenSignedResponseAlg: "ES256", WeChatAppID: miniApp,
		},
		{
			ID: miniClient2, GrantTypes: []string{provider.GrantTypeWeChat},
			Scopes: []string{"openid", "wechat"}, TokenEndpointAuthMethod: storage.AuthMethodNone, WeChatAppID: miniApp2,
		},
		{
			ID: tvClient, Name: tvName, GrantTypes: []string{provider.GrantTypeDeviceCode, "refresh_token"},
			Scopes: []string{"openid", "profile", "offline_access"}, TokenEndpointAuthMethod: storage.AuthMethodNone,
		},
		{
			ID: resourceClient, SecretHash: provider.HashClientSecret(testSecret, resourceSecret),
			GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := provider.ValidateClient(c, false); err != nil {
			e.t.Fatalf("client %s: %v", c.ID, err)
		}
		if err := e.store.CreateClient(ctx, c); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.store.LinkIdentity(ctx, storage.LinkRequest{
		AppID: "wxtestapp", OpenID: "o-alice", UnionID: testUnionID, NewSubject: testSubject,
		Name: "Alice", Picture: "https://img.example/alice.png", Now: now,
	}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.UpdateUser(ctx, testSubject, func(u storage.User) (storage.User, error) {
		u.PhoneNumber, u.PhoneNumberVerified = testPhoneNumber, true
		return u, nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) oauth2Config(clientID, secret, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: e.provider.Endpoint(), Scopes: scopes,
	}
}

// storageLink is a LinkRequest for tests.
func storageLink(appID, openID, unionID, subject string) storage.LinkRequest {
	return storage.LinkRequest{AppID: appID, OpenID: openID, UnionID: unionID, NewSubject: subject, Now: time.Now().UTC()}
}
