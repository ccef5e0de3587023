package provider_test

import (
	"context"
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
}

type envOption func(*provider.Config)

// newEnv starts a provider over TLS (https issuer, production settings).
func newEnv(t testing.TB, opts ...envOption) *env { return startEnv(t, true, opts...) }

// newPlainEnv starts a provider over plain HTTP (dev mode, for an http
// issuer): benchmarks use it so they measure the provider, not TLS.
func newPlainEnv(t testing.TB, opts ...envOption) *env {
	return startEnv(t, false, append(opts, func(c *provider.Config) { c.Dev = true })...)
}

func startEnv(t testing.TB, useTLS bool, opts ...envOption) *env {
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

	auth := &staticAuth{subject: testSubject, ended: make(chan struct{}, 1)}
	cfg := provider.Config{
		Issuer:        srv.URL,
		Secret:        testSecret,
		Storage:       store,
		Keys:          km,
		Authenticator: auth,
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h = p.Handler()

	e := &env{t: t, srv: srv, store: store, keys: km, clock: clk, auth: auth, issuer: srv.URL}
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
	if _, _, err := e.store.LinkIdentity(ctx, storage.LinkRequest{
		AppID: "wxtestapp", OpenID: "o-alice", UnionID: testUnionID, NewSubject: testSubject,
		Name: "Alice", Picture: "https://img.example/alice.png", Now: now,
	}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.UpdateUser(ctx, testSubject, func(u storage.User) (storage.User, error) {
		u.PhoneNumber = testPhoneNumber
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
