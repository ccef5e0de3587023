package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
)

const (
	opsSecret     = "ops-test-system-secret-0123456789abcdef"
	opsAdminToken = "ops-test-admin-token-0123456789"
	miniAppID     = "wxd0000000000000a1"
	miniAppSecret = "dev-miniprogram-secret"
	opsSubject    = "user-ops-alice"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns the JSON log lines whose msg is msg.
func (b *syncBuffer) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits for a line with msg and returns its attribute key.
func (b *syncBuffer) waitLog(t *testing.T, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ls := b.logLines(t, msg); len(ls) > 0 {
			return fmt.Sprint(ls[0][key])
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q log line", msg)
	return ""
}

// waitContains reports whether the log holds s within 5 seconds: a request
// log line is written after the response has gone out.
func (b *syncBuffer) waitContains(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(b.String(), s) {
			return true
		}
	}
	return false
}

// fixedAuth signs everyone in as opsSubject.
type fixedAuth struct{}

func (fixedAuth) Authenticate(http.ResponseWriter, *http.Request, fosite.AuthorizeRequester) (*provider.Authentication, error) {
	return &provider.Authentication{Subject: opsSubject, AuthTime: time.Now().Add(-time.Minute), AMR: []string{"test"}}, nil
}

// running is a provider served by serveOn, as `wxoidc serve` runs it.
type running struct {
	t      *testing.T
	cfg    Config
	st     *stack
	log    *syncBuffer
	issuer string
	admin  string // admin API base URL
	sim    *wechattest.Server
	simURL string
	cancel context.CancelFunc
	done   chan error
}

// startRunning starts a provider on SQLite with the WeChat simulator,
// the admin API and JSON logs captured in r.log.
func startRunning(t *testing.T, wrap func(http.Handler) http.Handler) *running {
	t.Helper()
	r := &running{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	r.sim = wechattest.New(wechattest.Config{AnyUserAgent: true})
	simSrv := httptest.NewServer(r.sim)
	t.Cleanup(simSrv.Close)
	r.simURL = simSrv.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.issuer = "http://" + ln.Addr().String()
	getenv := func(k string) string {
		return map[string]string{
			"WXOIDC_ISSUER":                r.issuer,
			"WXOIDC_SECRET":                opsSecret,
			"WXOIDC_STORAGE_DSN":           "sqlite://" + filepath.Join(t.TempDir(), "wxoidc.db"),
			"WXOIDC_ADMIN_ADDR":            "127.0.0.1:0",
			"WXOIDC_ADMIN_TOKEN":           opsAdminToken,
			"WXOIDC_WECHAT_API_BASE":       simSrv.URL,
			"WXOIDC_WECHAT_OPEN_BASE":      simSrv.URL,
			"WXOIDC_LOG_LEVEL":             "debug",
			"WXOIDC_HTTP_SHUTDOWN_TIMEOUT": "5s",
		}[k]
	}
	cfg, err := loadConfig("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.dev = true // http issuer and simulator URLs
	cfg.WeChat.Apps = []WeChatApp{{AppID: miniAppID, Secret: miniAppSecret, Kind: "miniprogram"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	log := newLogger(r.log, "json", "debug")
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	st, err := buildStack(ctx, cfg, true, log, fixedAuth{})
	if err != nil {
		t.Fatal(err)
	}
	r.st = st
	t.Cleanup(func() { st.store.Close() })
	var h http.Handler = st.provider.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	public, err := publicHandler(cfg, st, h)
	if err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- serveOn(ctx, cfg, st, ln, public) }()
	t.Cleanup(func() { r.stop() })
	r.admin = "http://" + r.log.waitLog(t, "admin API listening", "addr")
	return r
}

// stop shuts the server down and returns serveOn's error.
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for a second call
		return err
	case <-time.After(10 * time.Second):
		r.t.Fatal("serveOn did not return after cancel")
		return nil
	}
}

// postForm posts a form to the issuer and decodes the JSON answer.
func (r *running) postForm(path string, form url.Values, user, pass string, bearer string) (int, map[string]any, http.Header) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return r.send(req)
}

func (r *running) send(req *http.Request) (int, map[string]any, http.Header) {
	r.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	if resp.Header.Get("X-Request-Id") == "" {
		r.t.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	return resp.StatusCode, out, resp.Header
}

func (r *running) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get(r.issuer + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// adminGet GETs path from the admin listener with the token.
func (r *running) adminGet(path string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+opsAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// adminCall calls the admin API with the token.
func (r *running) adminCall(method, path string, in, out any) error {
	return newRemoteAdmin(r.admin, opsAdminToken).call(context.Background(), method, path, in, out)
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// TestServe_FullRunLogsNoSecrets runs every flow against a served provider
// and proves the captured log holds none of the secrets that passed
// through: tokens, codes, client secrets, the app secret, WeChat session
// keys and WeChat URLs. It also checks the metrics a login leaves and
// /readyz flipping when storage goes away.
func TestServe_FullRunLogsNoSecrets(t *testing.T) {
	r := startRunning(t, nil)
	ctx := context.Background()
	var secrets []string
	keep := func(what, s string) {
		t.Helper()
		if s == "" {
			t.Fatalf("%s: empty", what)
		}
		secrets = append(secrets, s)
	}
	keep("admin token", opsAdminToken)
	keep("system secret", opsSecret)
	keep("app secret", miniAppSecret)

	// Clients through the admin API.
	var web, svc provider.ClientMetadata
	if err := r.adminCall(http.MethodPost, "/admin/clients", provider.ClientMetadata{
		ClientID: "web", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile phone offline_access", SkipConsent: true,
	}, &web); err != nil {
		t.Fatal(err)
	}
	keep("web secret", web.ClientSecret)
	if err := r.adminCall(http.MethodPost, "/admin/clients", provider.ClientMetadata{
		ClientID: "svc", GrantTypes: []string{"client_credentials"}, Scope: "orders.read", TokenEndpointAuthMethod: "client_secret_post",
	}, &svc); err != nil {
		t.Fatal(err)
	}
	keep("svc secret", svc.ClientSecret)
	if err := r.adminCall(http.MethodPost, "/admin/clients", provider.ClientMetadata{
		ClientID: "mini", GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"}, Scope: "openid phone offline_access",
		TokenEndpointAuthMethod: "none", WeChatAppID: miniAppID,
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.adminCall(http.MethodGet, "/admin/clients/web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := newRemoteAdmin(r.admin, "").call(ctx, http.MethodGet, "/admin/clients", nil, nil); err == nil {
		t.Fatal("admin API answered without the token")
	}
	if _, err := r.st.store.LinkIdentity(ctx, storage.LinkRequest{
		AppID: "wxweb", OpenID: "o-ops-alice", NewSubject: opsSubject, Now: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}

	// client_credentials (secret in the body) and introspection.
	code, cc, _ := r.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svc.ClientSecret}, "scope": {"orders.read"}}, "", "", "")
	if code != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", code, cc)
	}
	keep("cc access token", str(cc, "access_token"))
	code, intro, _ := r.postForm("/oauth2/introspect", url.Values{"token": {str(cc, "access_token")}, "client_id": {"svc"}, "client_secret": {svc.ClientSecret}}, "", "", "")
	if code != http.StatusOK || intro["active"] != true {
		t.Fatalf("introspect: %d %v", code, intro)
	}

	// Code flow with PKCE, refresh, userinfo, revoke.
	verifier := "ops-test-verifier-0123456789abcdef0123456789abcdef"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {"https://rp.example/cb"},
		"scope": {"openid profile offline_access"}, "state": {"ops-state-0123456789"}, "nonce": {"ops-nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequest(http.MethodGet, r.issuer+"/oauth2/authorize?"+q.Encode(), nil)
	code, _, hdr := r.send(req)
	loc, _ := url.Parse(hdr.Get("Location"))
	authCode := loc.Query().Get("code")
	if code != http.StatusSeeOther && code != http.StatusFound || authCode == "" {
		t.Fatalf("authorize: %d, Location %q", code, hdr.Get("Location"))
	}
	keep("authorization code", authCode)
	code, tok, _ := r.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {authCode},
		"redirect_uri": {"https://rp.example/cb"}, "code_verifier": {verifier}}, "web", web.ClientSecret, "")
	if code != http.StatusOK {
		t.Fatalf("code exchange: %d %v", code, tok)
	}
	keep("access token", str(tok, "access_token"))
	keep("id token", str(tok, "id_token"))
	keep("refresh token", str(tok, "refresh_token"))
	code, ref, _ := r.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok, "refresh_token")}}, "web", web.ClientSecret, "")
	if code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, ref)
	}
	keep("refreshed access token", str(ref, "access_token"))
	keep("rotated refresh token", str(ref, "refresh_token"))
	req, _ = http.NewRequest(http.MethodGet, r.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+str(ref, "access_token"))
	if code, ui, _ := r.send(req); code != http.StatusOK || ui["sub"] != opsSubject {
		t.Fatalf("userinfo: %d %v", code, ui)
	}
	if code, body, _ := r.postForm("/oauth2/revoke", url.Values{"token": {str(ref, "refresh_token")}}, "web", web.ClientSecret, ""); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, body)
	}
	// A failure too: a reused code.
	if code, _, _ := r.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {authCode},
		"redirect_uri": {"https://rp.example/cb"}, "code_verifier": {verifier}}, "web", web.ClientSecret, ""); code != http.StatusBadRequest {
		t.Fatalf("reused code: got %d, want 400", code)
	}

	// The Mini Program grant against the simulator, and the WeChat client
	// used directly with its logger in the same log.
	jsCode := simCode(t, r.simURL+"/sim/login", url.Values{"appid": {miniAppID}, "user": {"alice"}})
	keep("js_code", jsCode)
	phoneCode := simCode(t, r.simURL+"/sim/phone-code", url.Values{"appid": {miniAppID}, "user": {"alice"}})
	keep("phone_code", phoneCode)
	code, mp, _ := r.postForm("/oauth2/token", url.Values{"grant_type": {provider.GrantTypeWeChat}, "client_id": {"mini"},
		"js_code": {jsCode}, "phone_code": {phoneCode}, "scope": {"openid phone offline_access"}}, "", "", "")
	if code != http.StatusOK {
		t.Fatalf("wechat grant: %d %v", code, mp)
	}
	keep("mini access token", str(mp, "access_token"))
	keep("mini refresh token", str(mp, "refresh_token"))
	keep("session key", r.sim.SessionKey(miniAppID, "alice"))
	wc := &wechat.Client{AppID: miniAppID, AppSecret: miniAppSecret, Endpoint: wechat.Endpoint{APIURL: r.simURL, OpenURL: r.simURL},
		Logger: r.st.log.With("component", "test-wechat")}
	code2 := simCode(t, r.simURL+"/sim/login", url.Values{"appid": {miniAppID}, "user": {"bob"}})
	keep("js_code 2", code2)
	sess, err := wc.Code2Session(ctx, code2)
	if err != nil {
		t.Fatal(err)
	}
	keep("bob session key", sess.SessionKey)
	if _, err := wc.Code2Session(ctx, code2); err == nil {
		t.Fatal("reused js_code accepted")
	}
	pc := simCode(t, r.simURL+"/sim/phone-code", url.Values{"appid": {miniAppID}, "user": {"bob"}})
	keep("phone_code 2", pc)
	if _, err := wc.PhoneNumber(ctx, pc, ""); err != nil {
		t.Fatal(err)
	}
	st, _ := wc.ServerToken(ctx)
	keep("wechat server token", st)

	// Metrics after the logins.
	// Metrics are on the admin listener, behind its token (their labels
	// name clients), and not on the public one.
	if code, _ := r.get("/metrics"); code != http.StatusNotFound {
		t.Fatalf("public /metrics: %d, want 404", code)
	}
	if resp, err := http.Get(r.admin + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin /metrics without the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	code, metrics := r.adminGet("/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`wxoidc_tokens_issued_total{client_id="web",grant_type="authorization_code"} 1`,
		`wxoidc_tokens_issued_total{client_id="web",grant_type="refresh_token"} 1`,
		`wxoidc_tokens_issued_total{client_id="svc",grant_type="client_credentials"} 1`,
		`wxoidc_tokens_issued_total{client_id="mini",grant_type="` + provider.GrantTypeWeChat + `"} 1`,
		`wxoidc_http_requests_total{code="200",method="POST",route="/oauth2/token"} 4`,
		`wxoidc_http_requests_total{code="400",method="POST",route="/oauth2/token"} 1`,
		`wxoidc_http_requests_total{code="303",method="GET",route="/oauth2/authorize"} 1`,
		`wxoidc_http_request_duration_seconds_count{method="GET",route="/userinfo"} 1`,
		`wxoidc_wechat_calls_total{api="jscode2session",appid="` + miniAppID + `",errcode="0"} 1`,
		`wxoidc_wechat_server_token_refreshes_total{appid="` + miniAppID + `",result="ok"} 1`,
		`wxoidc_storage_operation_duration_seconds_count{op="commit",result="ok"}`,
		`wxoidc_storage_operation_duration_seconds_count{op="select users",result="ok"}`,
		`wxoidc_http_requests_total{code="201",method="POST",route="/admin/clients"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Readiness, then storage goes away.
	if code, body := r.get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _ := r.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	r.st.store.Close()
	if code, body := r.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"storage":"unreachable"`) {
		t.Fatalf("readyz with storage closed: %d %s", code, body)
	}
	if code, _ := r.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with storage closed: %d", code)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// The log: one line per request, with ids and routes, and no secret.
	log := r.log.String()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log contains a secret (%.6s…)", s)
		}
	}
	for _, bad := range []string{"secret=", "js_code=", "access_token=", "code=", "/sns/", "/cgi-bin/", "/wxa/", r.simURL} {
		if strings.Contains(log, bad) {
			t.Errorf("the log contains %q", bad)
		}
	}
	reqs := r.log.logLines(t, "request")
	if len(reqs) != 21 { // 5 admin, 9 protocol, 5 health and metrics, 2 refused metrics
		t.Fatalf("%d request lines, want one per request", len(reqs))
	}
	var sawMini, sawSvc bool
	for _, l := range reqs {
		if str(l, "request_id") == "" || str(l, "route") == "" || l["status"] == nil || l["duration_ms"] == nil {
			t.Errorf("request line lacks a field: %v", l)
		}
		if l["route"] == "/oauth2/token" && l["client_id"] == "mini" {
			sawMini = true
		}
		if l["route"] == "/oauth2/token" && l["client_id"] == "svc" {
			sawSvc = true
		}
	}
	if !sawMini || !sawSvc {
		t.Errorf("token request lines do not name the body-authenticated clients (mini %v, svc %v)", sawMini, sawSvc)
	}
	if !strings.Contains(log, `"route":"/admin/clients/{id}"`) {
		t.Errorf("admin requests are not logged by route template")
	}
}

func simCode(t *testing.T, u string, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code == "" {
		t.Fatalf("simulator %s: %v %v", u, err, out)
	}
	return out.Code
}

// TestServe_GracefulShutdown cancels the server's context while a request
// is in flight: the request finishes, then serveOn returns cleanly.
func TestServe_GracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	r := startRunning(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/slow" {
				close(entered)
				<-release
				w.Write([]byte("finished"))
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(r.issuer + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	r.cancel() // SIGTERM
	select {
	case err := <-r.done:
		t.Fatalf("serveOn returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// New connections are refused while the old request finishes.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(r.issuer, "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted during shutdown")
	}
	close(release)
	res := <-got
	if res.err != nil || res.code != http.StatusOK || res.body != "finished" {
		t.Fatalf("in-flight request: %+v, want 200 finished", res)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("serveOn: %v", err)
		}
		r.done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("serveOn did not return after the request finished")
	}
	if ls := r.log.logLines(t, "shutting down"); len(ls) != 1 {
		t.Errorf("%d shutting-down lines, want 1", len(ls))
	}
	if _, err := http.Get(r.admin + "/admin/clients"); err == nil {
		t.Errorf("the admin API still answers after shutdown")
	}
}
