// Package demo is the demo relying party of `wxoidc dev`: a page at /demo
// that signs in with the provider through the authorization-code flow with
// PKCE, as an ordinary OIDC client would, and shows the verified ID token
// claims and userinfo. It keeps its sessions in memory; it is for local
// development only.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config configures a Handler.
type Config struct {
	// Issuer is the provider's issuer.
	Issuer string
	// ClientID and ClientSecret are the demo client's (SPEC §9: demo-web).
	ClientID, ClientSecret string
	// BaseURL is where the handler is mounted; default Issuer + "/demo".
	// The redirect URI is BaseURL + "/callback" and the post-logout
	// redirect URI is BaseURL.
	BaseURL string
	// Scopes default to openid profile phone wechat offline_access.
	Scopes []string
	// Title is the page heading; default "wxoidc demo".
	Title string
	// HTTPClient reaches the issuer; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
}

// Handler is the demo relying party. Mount it at BaseURL's path without
// stripping the prefix; it serves the path itself and /login, /callback
// and /logout below it.
type Handler struct {
	cfg      Config
	basePath string

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use; guarded by mu
	pending  map[string]flow
	sessions map[string]*rpSession
}

type flow struct {
	state, nonce, verifier string
	expires                time.Time
}

type rpSession struct {
	IDToken  string
	Claims   map[string]any
	UserInfo map[string]any
	expires  time.Time
}

const (
	cookieFlow    = "demo_flow"
	cookieSession = "demo_session"
)

// New returns the demo handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("demo: issuer and client id are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Issuer + "/demo"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("demo: base URL must be absolute")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "phone", "wechat", oidc.ScopeOfflineAccess}
	}
	if cfg.Title == "" {
		cfg.Title = "wxoidc demo"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Handler{cfg: cfg, basePath: u.Path, pending: map[string]flow{}, sessions: map[string]*rpSession{}}, nil
}

func (h *Handler) ctx(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, h.cfg.HTTPClient)
	return context.WithValue(ctx, oauth2.HTTPClient, h.cfg.HTTPClient)
}

func (h *Handler) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, nil
	}
	p, err := oidc.NewProvider(h.ctx(ctx), h.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	h.provider = p
	return p, nil
}

func (h *Handler) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: h.cfg.ClientID, ClientSecret: h.cfg.ClientSecret,
		RedirectURL: h.cfg.BaseURL + "/callback", Endpoint: p.Endpoint(), Scopes: h.cfg.Scopes,
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, h.basePath) {
	case "", "/":
		h.home(w, r, "")
	case "/login":
		h.login(w, r)
	case "/callback":
		h.callback(w, r)
	case "/logout":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.logout(w, r)
	default:
		http.NotFound(w, r)
	}
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: h.basePath, MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(h.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	p, err := h.oidcProvider(r.Context())
	if err != nil {
		h.home(w, r, "discovery failed: "+err.Error())
		return
	}
	f := flow{state: random(), nonce: random(), verifier: oauth2.GenerateVerifier(), expires: time.Now().Add(10 * time.Minute)}
	id := random()
	h.mu.Lock()
	h.gcLocked()
	h.pending[id] = f
	h.mu.Unlock()
	h.setCookie(w, cookieFlow, id, 600)
	http.Redirect(w, r, h.oauth2Config(p).AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)), http.StatusFound)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	c, err := r.Cookie(cookieFlow)
	if err != nil {
		h.home(w, r, "no sign-in in progress in this browser")
		return
	}
	h.mu.Lock()
	f, ok := h.pending[c.Value]
	delete(h.pending, c.Value)
	h.mu.Unlock()
	h.setCookie(w, cookieFlow, "", -1)
	if !ok || time.Now().After(f.expires) || q.Get("state") != f.state {
		h.home(w, r, "state mismatch or expired sign-in")
		return
	}
	if e := q.Get("error"); e != "" {
		h.home(w, r, "the provider answered "+e+": "+q.Get("error_description"))
		return
	}
	p, err := h.oidcProvider(ctx)
	if err != nil {
		h.home(w, r, "discovery failed: "+err.Error())
		return
	}
	tok, err := h.oauth2Config(p).Exchange(h.ctx(ctx), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		h.home(w, r, "code exchange failed: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: h.cfg.ClientID}).Verify(h.ctx(ctx), raw)
	if err != nil {
		h.home(w, r, "ID token verification failed: "+err.Error())
		return
	}
	if idt.Nonce != f.nonce {
		h.home(w, r, "ID token nonce mismatch")
		return
	}
	s := &rpSession{IDToken: raw, expires: time.Now().Add(8 * time.Hour)}
	idt.Claims(&s.Claims)
	if ui, err := p.UserInfo(h.ctx(ctx), oauth2.StaticTokenSource(tok)); err == nil {
		ui.Claims(&s.UserInfo)
	} else {
		s.UserInfo = map[string]any{"error": err.Error()}
	}
	id := random()
	h.mu.Lock()
	h.sessions[id] = s
	h.mu.Unlock()
	h.setCookie(w, cookieSession, id, 8*3600)
	http.Redirect(w, r, h.cfg.BaseURL, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	var hint string
	if c, err := r.Cookie(cookieSession); err == nil {
		h.mu.Lock()
		if s, ok := h.sessions[c.Value]; ok {
			hint = s.IDToken
		}
		delete(h.sessions, c.Value)
		h.mu.Unlock()
	}
	h.setCookie(w, cookieSession, "", -1)
	p, err := h.oidcProvider(r.Context())
	var endSession struct {
		URL string `json:"end_session_endpoint"`
	}
	if err == nil {
		p.Claims(&endSession)
	}
	if endSession.URL == "" || hint == "" {
		http.Redirect(w, r, h.cfg.BaseURL, http.StatusSeeOther)
		return
	}
	v := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {h.cfg.BaseURL}, "state": {"signed-out"}}
	http.Redirect(w, r, endSession.URL+"?"+v.Encode(), http.StatusSeeOther)
}

// gcLocked drops expired flows and sessions.
func (h *Handler) gcLocked() {
	now := time.Now()
	for k, f := range h.pending {
		if now.After(f.expires) {
			delete(h.pending, k)
		}
	}
	for k, s := range h.sessions {
		if now.After(s.expires) {
			delete(h.sessions, k)
		}
	}
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request, problem string) {
	var s *rpSession
	if c, err := r.Cookie(cookieSession); err == nil {
		h.mu.Lock()
		s = h.sessions[c.Value]
		h.mu.Unlock()
	}
	data := map[string]any{"Title": h.cfg.Title, "Base": h.cfg.BaseURL, "Problem": problem, "ClientID": h.cfg.ClientID,
		"SignedOut": r.URL.Query().Get("state") == "signed-out"}
	if s != nil {
		claims, _ := json.MarshalIndent(s.Claims, "", "  ")
		ui, _ := json.MarshalIndent(s.UserInfo, "", "  ")
		data["Claims"], data["UserInfo"] = string(claims), string(ui)
		data["Sub"] = s.Claims["sub"]
		data["Name"] = displayName(s.UserInfo, s.Claims)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if problem != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	homePage.Execute(w, data)
}

// displayName is the person's name as the provider tells it (UserInfo,
// else the ID token), or "".
func displayName(claimSets ...map[string]any) string {
	for _, c := range claimSets {
		if n, _ := c["name"].(string); n != "" {
			return n
		}
	}
	return ""
}

var homePage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"PingFang SC",sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.5}
pre{background:#f3f3f3;padding:.75rem;overflow:auto;font-size:.85rem;border-radius:6px}
.button{font-size:1rem;line-height:1.2;padding:.7rem 1.2rem;border-radius:6px;border:0;background:#07c160;color:#fff;cursor:pointer;text-decoration:none;display:inline-flex;align-items:center;justify-content:center;min-height:44px}
.secondary{background:#eee;color:#111;border:1px solid #ccc}
.problem{color:#a00}
.note{color:#555;font-size:.9rem}
</style></head>
<body><main>
<h1>{{.Title}}</h1>
<p>A relying party (client <code>{{.ClientID}}</code>) using the authorization-code flow with PKCE against this provider.</p>
{{if .Problem}}<p class="problem" role="alert" id="problem">{{.Problem}}</p>{{end}}
{{if .Claims}}
<p id="signed-in">Signed in as {{if .Name}}<strong id="name">{{.Name}}</strong> <span class="note">(sub <code id="sub">{{.Sub}}</code>)</span>{{else}}<code id="sub">{{.Sub}}</code>{{end}}.</p>
<h2>ID token claims (verified)</h2>
<pre id="claims">{{.Claims}}</pre>
<h2>UserInfo</h2>
<pre id="userinfo">{{.UserInfo}}</pre>
<form method="post" action="{{.Base}}/logout"><button class="button secondary" type="submit" id="sign-out">Sign out</button></form>
{{else}}
{{if .SignedOut}}<p id="signed-out" role="status">You have been signed out.</p>{{end}}
<p><a class="button" id="sign-in" href="{{.Base}}/login">Sign in with WeChat</a></p>
{{end}}
</main></body></html>
`))
