package weblogin_test

import (
	"context"
	"database/sql"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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

// fakeClock is a settable clock for the rate limits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// single is one provider with web login on SQLite at path, whose limits
// run on clock, served over HTTP at issuer (given by the caller, who
// starts the server). A request's peer address can be set with the
// X-Test-Peer header (the test's stand-in for a trusted proxy).
func single(t *testing.T, path string, clock *fakeClock, simURL string) (*env, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("X-Test-Peer"); a != "" {
			r.RemoteAddr = a
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
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
			AppID: a.AppID, AppSecret: a.Secret, Endpoint: wechat.Endpoint{APIURL: simURL, OpenURL: simURL},
		}}
	}
	auth, err := weblogin.New(weblogin.Config{
		Issuer: srv.URL, Storage: store, WeChatApps: apps, Secret: testSecret, Dev: true, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Config{
		Issuer: srv.URL, Secret: testSecret, Storage: store, Keys: km, Authenticator: auth,
		WeChatApps: apps, Dev: true, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h = p.Handler()
	e := &env{t: t, store: store, issuer: srv.URL, simURL: simURL}
	e.seed()
	return e, srv
}

// dbSize is the database's size once its WAL is checkpointed into it (the
// WAL itself is bounded by SQLite's auto-checkpoint and reused).
func dbSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestFlood_BoundedStorageAnd429: a ten-second flood of padded
// authorization requests (250 a second, from one address, each with a
// long state and nonce and a dozen 4 KiB junk parameters — 66 KB that were
// each stored as a login state for ten minutes) grows the database by at
// most a few MB and is answered with 429 once over the limit, while
// another address still signs in. The flood's ten seconds pass on the
// limits' clock; the test sends it as fast as it can.
func TestFlood_BoundedStorageAnd429(t *testing.T) {
	sim := wechattest.New(wechattest.Config{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	// The flood's ten seconds end about now, so the sign-in after it has a
	// sensible auth_time.
	clock := &fakeClock{now: time.Now().Add(-10 * time.Second)}
	path := filepath.Join(t.TempDir(), "wxoidc.db")
	e, srv := single(t, path, clock, simSrv.URL)
	e.sim = sim
	h := srv.Config.Handler

	form := url.Values{
		"client_id": {thirdParty}, "response_type": {"code"}, "redirect_uri": {thirdRedirect},
		"scope": {"openid profile"}, "state": {strings.Repeat("s", 1000)}, "nonce": {strings.Repeat("n", 500)},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}
	for i := range 14 {
		form.Set(fmt.Sprintf("junk%02d", i), strings.Repeat("j", 4000))
	}
	body := form.Encode()
	before := dbSize(t, path)
	const perSecond, seconds = 250, 10
	status := map[int]int{}
	first429 := -1
	for i := range perSecond * seconds {
		clock.Add(time.Second / perSecond)
		req := httptest.NewRequest(http.MethodPost, srv.URL+"/oauth2/authorize", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Test-Peer", "203.0.113.7:40000")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		status[rec.Code]++
		if rec.Code == http.StatusTooManyRequests && first429 < 0 {
			first429 = i
			if rec.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	grown := dbSize(t, path) - before
	t.Logf("flood of %d requests: statuses %v, first 429 at request %d, database grew %d KB", perSecond*seconds, status, first429, grown>>10)
	if first429 < 0 || first429 > 100 {
		t.Fatalf("first 429 at request %d, want one within the burst", first429)
	}
	if status[http.StatusSeeOther] > 200 {
		t.Fatalf("%d flood requests got through", status[http.StatusSeeOther])
	}
	if grown > 3<<20 {
		t.Fatalf("the database grew by %d bytes", grown)
	}

	// Another address signs in, end to end.
	sim.SetAutoConfirm("alice")
	e.ctx = oidc.ClientContext(context.Background(), srv.Client())
	var err error
	e.provider, err = oidc.NewProvider(e.ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	if idt := e.redeem(conf, v, p); idt.Subject == "" {
		t.Fatal("no subject")
	}
}

// TestPendingLogins_CappedPerBrowser: one browser cannot keep more than
// its cap of sign-ins pending; beyond it the client hears
// temporarily_unavailable and nothing is stored.
func TestPendingLogins_CappedPerBrowser(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	var refused page
	for i := range weblogin.DefaultPendingPerBrowser + 2 {
		p := b.get(authURL(conf, oauth2.GenerateVerifier()))
		if p.location != nil && strings.HasPrefix(p.location.String(), firstRedirect) {
			refused = p
			if i < weblogin.DefaultPendingPerBrowser {
				t.Fatalf("refused at sign-in %d, below the cap of %d", i, weblogin.DefaultPendingPerBrowser)
			}
			break
		}
	}
	if refused.location == nil {
		t.Fatalf("%d pending sign-ins from one browser were all admitted", weblogin.DefaultPendingPerBrowser+2)
	}
	e.clientError(firstRedirect, refused, "temporarily_unavailable")
}

// TestCookies_HostPrefixOnHTTPS: with an https issuer, the login cookies
// are __Host- cookies (Secure, Path=/, no Domain), which no sibling
// subdomain and no plain-HTTP response can set.
func TestCookies_HostPrefixOnHTTPS(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store}
	e.seed()
	apps := map[string]provider.WeChatApp{websiteApp: {Kind: wechat.KindWebsite, Client: &wechat.Client{AppID: websiteApp, AppSecret: "s"}}}
	const issuer = "https://id.example.com/oidc"
	auth, err := weblogin.New(weblogin.Config{Issuer: issuer, Storage: store, WeChatApps: apps, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	km, _ := keys.New(store, keys.Config{Secret: testSecret})
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Config{Issuer: issuer, Secret: testSecret, Storage: store, Keys: km, Authenticator: auth, WeChatApps: apps})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"client_id": {firstParty}, "response_type": {"code"}, "redirect_uri": {firstRedirect},
		"scope": {"openid"}, "state": {stateFromTheTest}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, issuer+"/oauth2/authorize?"+q.Encode(), nil))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) == 0 {
		t.Fatalf("authorize: %d, cookies %v", rec.Code, cookies)
	}
	for _, c := range cookies {
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
			t.Fatalf("cookie %s: want __Host-, Secure, Path=/, no Domain, HttpOnly", c)
		}
	}
}

// TestBinding_PlantedValueReplaced: a binding cookie the provider did not
// issue (an attacker's choice, planted by cookie tossing) is not used: the
// browser gets a server-issued one, and a login state bound to the planted
// value cannot be finished with it.
func TestBinding_PlantedValueReplaced(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	issuer, _ := url.Parse(e.issuer)
	planted := strings.Repeat("A", 43)
	b.c.Jar.SetCookies(issuer, []*http.Cookie{{Name: "wxoidc_browser", Value: planted, Path: "/"}})
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	p := b.get(authURL(conf, oauth2.GenerateVerifier()))
	if p.location == nil || !strings.Contains(p.location.Path, "/login") {
		t.Fatalf("want a redirect to /login, got %d %v", p.status, p.location)
	}
	var got []string
	for _, c := range b.c.Jar.Cookies(issuer) {
		if c.Name == "wxoidc_browser" {
			got = append(got, c.Value)
		}
	}
	if len(got) != 1 || got[0] == planted || !strings.Contains(got[0], ".") {
		t.Fatalf("binding cookies after the first request %v: want one server-issued value", got)
	}
	// The browser with the planted value only cannot use the state.
	other := e.browser(desktopUA)
	other.c.Jar.SetCookies(issuer, []*http.Cookie{{Name: "wxoidc_browser", Value: planted, Path: "/"}})
	if p := other.get(p.location.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "errOtherBrowser") {
		t.Fatalf("a browser without the issued binding used the login state: %d %.200s", p.status, p.body)
	}
}

// TestSession_RotatedAtLogin: a session id the browser carried before
// signing in (session fixation: one the attacker knows) is deleted at
// login, and the signed-in session has a new id.
func TestSession_RotatedAtLogin(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	now := time.Now().UTC()
	fixed := storage.BrowserSession{ID: "attacker-known-session-id-0123456789abcdef", Subject: "nobody", AuthTime: now, ExpiresAt: now.Add(time.Hour)}
	if err := e.store.CreateBrowserSession(context.Background(), fixed); err != nil {
		t.Fatal(err)
	}
	b := e.browser(desktopUA)
	issuer, _ := url.Parse(e.issuer)
	b.c.Jar.SetCookies(issuer, []*http.Cookie{{Name: "wxoidc_session", Value: fixed.ID, Path: "/"}})
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	e.redeem(conf, v, p)
	for _, c := range b.c.Jar.Cookies(issuer) {
		if c.Name == "wxoidc_session" && c.Value == fixed.ID {
			t.Fatal("the session id planted before login is still the browser's session")
		}
	}
	if _, err := e.store.BrowserSession(context.Background(), fixed.ID); err == nil {
		t.Fatal("the planted session survived the login")
	}
}

// TestLogin_HeadDoesNotConsumeState: HEAD /login (a link checker, a
// preview) leaves the single-use login state for the real GET.
func TestLogin_HeadDoesNotConsumeState(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p := b.get(authURL(conf, v))
	if p.location == nil || !strings.Contains(p.location.Path, "/login") {
		t.Fatalf("want a redirect to /login, got %d %v", p.status, p.location)
	}
	req, _ := http.NewRequest(http.MethodHead, p.location.String(), nil)
	if h := b.do(req); h.status != http.StatusOK {
		t.Fatalf("HEAD /login: %d", h.status)
	}
	p, _ = b.follow(p.location.String())
	e.redeem(conf, v, p)
}

// signIn signs user in with b through the first-party client and returns
// the ID token.
func (e *env) signIn(b *browser, user string) string {
	e.t.Helper()
	e.sim.SetAutoConfirm(user)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	tok, err := conf.Exchange(e.ctx, p.location.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.Extra("id_token").(string)
}

// TestLogout_AsksWhenHintIsAnotherUsers: an id_token_hint of somebody
// else (an attacker's own ID token) does not end the victim's session
// without asking (RP-Initiated Logout §2); the confirmation POST needs the
// form's token, bound to this browser, and this origin.
func TestLogout_AsksWhenHintIsAnotherUsers(t *testing.T) {
	e := newEnv(t)
	attacker := e.browser(desktopUA)
	attackerHint := e.signIn(attacker, "mallory")
	victim := e.browser(desktopUA)
	e.signIn(victim, "alice")
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	stillSignedIn := func(when string) {
		t.Helper()
		v := oauth2.GenerateVerifier()
		p := victim.get(authURL(conf, v, "prompt", "none"))
		if p.location == nil || p.location.Query().Get("code") == "" {
			t.Fatalf("%s: the victim was signed out (%d %v)", when, p.status, p.location)
		}
	}

	q := url.Values{"id_token_hint": {attackerHint}, "post_logout_redirect_uri": {firstLogout}, "state": {"s"}}
	page := victim.get(e.issuer + "/oauth2/logout?" + q.Encode())
	if page.status != http.StatusOK || page.location != nil || !strings.Contains(page.body, `name="confirm"`) {
		t.Fatalf("logout with another user's hint: %d %v, want the confirmation page", page.status, page.location)
	}
	stillSignedIn("after the link")
	csrf := regexpValue(t, page.body, "csrf_token")
	form := url.Values{"confirm": {"yes"}, "client_id": {firstParty}, "post_logout_redirect_uri": {firstLogout}, "state": {"s"}}

	// A cross-site form (no token; or the token with another Origin).
	if p := victim.post(e.issuer+"/oauth2/logout", form, nil); p.status != http.StatusForbidden {
		t.Fatalf("confirmation without the token: %d", p.status)
	}
	withToken := url.Values{"csrf_token": {csrf}}
	for k, v := range form {
		withToken[k] = v
	}
	if p := victim.post(e.issuer+"/oauth2/logout", withToken, http.Header{"Origin": {"https://evil.example"}}); p.status != http.StatusForbidden {
		t.Fatalf("confirmation from another origin: %d", p.status)
	}
	// The attacker's own token for its own browser does not fit the victim's.
	if p := attacker.get(e.issuer + "/oauth2/logout"); p.status == http.StatusOK {
		other := url.Values{"csrf_token": {regexpValue(t, p.body, "csrf_token")}}
		for k, v := range form {
			other[k] = v
		}
		if p := victim.post(e.issuer+"/oauth2/logout", other, nil); p.status != http.StatusForbidden {
			t.Fatalf("confirmation with another browser's token: %d", p.status)
		}
	}
	stillSignedIn("after forged confirmations")

	// The person confirms.
	p := victim.post(e.issuer+"/oauth2/logout", withToken, http.Header{"Origin": {e.issuer}})
	if p.location == nil || p.location.String() != firstLogout+"?state=s" {
		t.Fatalf("confirmed logout: %d %v", p.status, p.location)
	}
	e.clientError(firstRedirect, victim.get(authURL(conf, oauth2.GenerateVerifier(), "prompt", "none")), "login_required")
}

// regexpValue returns the value of the hidden input name in an HTML page.
func regexpValue(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in %.300s", name, body)
	}
	return html.UnescapeString(m[1])
}

// TestPages_SecurityHeaders: every HTML page — login step, errors,
// consent, logout confirmation and result — carries the same security
// headers (no framing, strict CSP, no referrer, no caching).
func TestPages_SecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	e.signIn(b, "alice")
	third := e.config(thirdParty, thirdSecret, thirdRedirect, "openid")
	urls := map[string]string{
		"consent":        authURL(third, oauth2.GenerateVerifier()),
		"error":          e.issuer + "/login/wechat/callback?state=nope",
		"consents":       e.issuer + "/login/consents",
		"logout confirm": e.issuer + "/oauth2/logout",
		"logout error":   e.issuer + "/oauth2/logout?id_token_hint=x.y.z",
		"authorize error": e.issuer + "/oauth2/authorize?" + url.Values{"client_id": {"nobody"}, "response_type": {"code"},
			"redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}, "state": {"s1"}}.Encode(),
	}
	for name, u := range urls {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("User-Agent", desktopUA)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s, want an HTML page", name, resp.StatusCode, h.Get("Content-Type"))
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", name, csp, want)
			}
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", name, k, h.Get(k), v)
			}
		}
	}
}
