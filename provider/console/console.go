package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
)

// ClientID is the client id the console signs in with; package main
// registers it at start (ClientMetadata).
const ClientID = "wxoidc-console"

// ClientMetadata is the console's own OAuth client, for consoleURL (as in
// Config.URL): public (PKCE, so there is no secret to leak), first-party
// (no consent screen), openid and profile, redirected to the callback.
// Package main registers it at start.
func ClientMetadata(consoleURL string) provider.ClientMetadata {
	return provider.ClientMetadata{
		ClientID: ClientID, ClientName: "wxoidc console",
		RedirectURIs: []string{consoleURL + "callback"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scope: "openid profile", TokenEndpointAuthMethod: "none",
		IDTokenSignedResponseAlg: "RS256", SkipConsent: true,
	}
}

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Config configures the console.
type Config struct {
	// Issuer is the provider's issuer URL; operators sign in there.
	// Required.
	Issuer string
	// URL is where operators reach the console, ending in /console/ (e.g.
	// http://127.0.0.1:8081/console/ or https://admin.example.com/console/).
	// Its redirect URI is URL + "callback". Empty turns sign-in with WeChat
	// off; the admin token still works.
	URL string
	// Admin is the admin API. Every read and change of the console goes
	// through it, in process. Required.
	Admin http.Handler
	// AdminToken is the admin API's bearer token. The console presents it
	// on each call, and it is also the break-glass sign-in: whoever types it
	// on the sign-in page is an admin. Empty means the API runs without a
	// token and break-glass sign-in is off.
	AdminToken string
	// IssuerHandler, when set, is the provider's public handler: the
	// console then calls the issuer's discovery, token and JWKS endpoints
	// in process instead of over the network. HTTPClient is used otherwise.
	IssuerHandler http.Handler
	// HTTPClient reaches the issuer when IssuerHandler is nil; nil means a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Secret is the system secret; session cookies are sealed with a key
	// derived from it, so every replica reads them. At least 32 bytes.
	Secret []byte
	// WeChatApps are the configured WeChat apps, offered in the app form.
	WeChatApps []admin.WeChatApp
	// GrantTypes are the grant types the provider supports, offered in the
	// app form.
	GrantTypes []string
	// SessionLifetime is how long a console sign-in lasts; 0 means 8 hours.
	SessionLifetime time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives sign-ins, refusals and failures (never a secret);
	// nil discards.
	Logger *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("console: issuer: required"))
	}
	if c.Admin == nil {
		errs = append(errs, errors.New("console: admin: required"))
	}
	if len(c.Secret) < 32 {
		errs = append(errs, errors.New("console: secret: must be at least 32 bytes"))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			errs = append(errs, errors.New("console: url: must be an absolute http(s) URL"))
		case u.Path != Prefix:
			errs = append(errs, errors.New("console: url: must end in "+Prefix+" (the console is served there)"))
		}
	}
	return errors.Join(errs...)
}

// Handler is the console. Create it with New and mount it at /console/
// on the admin listener, without stripping the prefix.
type Handler struct {
	cfg     Config
	log     *slog.Logger // never nil after New
	router  *mux.Router  // read-only after New
	keys    keyring      // derived from cfg.Secret
	secure  bool         // cookies are Secure: cfg.URL is https
	tokenFP string       // fingerprint of cfg.AdminToken; "" without one
	issuer  *http.Client // reaches the issuer; never nil after New

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first sign-in; guarded by mu
}

// New validates cfg and returns the console.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, keys: deriveKeys(cfg.Secret), secure: strings.HasPrefix(cfg.URL, "https://")}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.AdminToken != "" {
		h.tokenFP = h.fingerprint(cfg.AdminToken)
	}
	switch {
	case cfg.IssuerHandler != nil:
		h.issuer = &http.Client{Transport: handlerTransport{cfg.IssuerHandler}, Timeout: 10 * time.Second}
	case cfg.HTTPClient != nil:
		h.issuer = cfg.HTTPClient
	default:
		h.issuer = &http.Client{Timeout: 10 * time.Second}
	}
	h.router = h.routes()
	return h, nil
}

// fingerprint is a keyed hash of the admin token: a break-glass session
// holds it, so that changing the token ends those sessions.
func (h *Handler) fingerprint(token string) string {
	m := hmac.New(sha256.New, h.keys.token)
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// routes registers every page, in one place.
func (h *Handler) routes() *mux.Router {
	r := mux.NewRouter().UseEncodedPath() // client ids may hold escaped characters
	p := r.PathPrefix("/console").Subrouter()
	get, post := http.MethodGet, http.MethodPost

	p.HandleFunc("/static/{file}", h.static).Methods(get, http.MethodHead)
	p.HandleFunc("/lang/{lang}", h.switchLanguage).Methods(get)
	p.HandleFunc("/login", h.loginPage).Methods(get)
	p.HandleFunc("/login/wechat", h.startWeChat).Methods(get)
	p.HandleFunc("/login/token", h.breakGlass).Methods(post)
	p.HandleFunc("/callback", h.callback).Methods(get)
	p.HandleFunc("/logout", h.logout).Methods(post)

	p.Handle("/", h.page(h.overview)).Methods(get)
	p.Handle("/apps", h.page(h.appList)).Methods(get)
	p.Handle("/apps/new", h.page(h.appNew)).Methods(get)
	p.Handle("/apps/new", h.change("app-create", h.appCreate)).Methods(post)
	p.Handle("/apps/{id}", h.page(h.appShow)).Methods(get)
	p.Handle("/apps/{id}", h.change("app-update", h.appUpdate)).Methods(post)
	p.Handle("/apps/{id}/secret", h.change("app-secret", h.appRotateSecret)).Methods(post)
	p.Handle("/apps/{id}/delete", h.change("app-delete", h.appDelete)).Methods(post)
	p.Handle("/users", h.page(h.userList)).Methods(get)
	p.Handle("/users/{sub}", h.page(h.userShow)).Methods(get)
	p.Handle("/users/{sub}/{action}", h.change("user", h.userChange)).Methods(post)
	p.Handle("/events", h.page(h.eventList)).Methods(get)
	p.Handle("/keys", h.page(h.keyList)).Methods(get)
	p.Handle("/keys/rotate", h.change("keys-rotate", h.keyRotate)).Methods(post)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "errNotFound")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusMethodNotAllowed, "errMethod")
	})
	return r
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.setSecurityHeaders(w)
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	h.router.ServeHTTP(w, r)
}

// Route returns the path template r matches (e.g. "/console/apps/{id}"),
// or "": request logs and metrics name requests by it.
func (h *Handler) Route(r *http.Request) string {
	var m mux.RouteMatch
	if !h.router.Match(r, &m) || m.Route == nil {
		return ""
	}
	t, err := m.Route.GetPathTemplate()
	if err != nil {
		return ""
	}
	return t
}
