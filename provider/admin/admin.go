package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// KeyManager is what the admin API needs of the signing keys; *keys.Manager
// satisfies it.
type KeyManager interface {
	// Algorithms lists the algorithms keys are kept for.
	Algorithms() []string
	List(ctx context.Context) ([]keys.KeyInfo, error)
	// Rotate creates new keys; in a transaction (storage.InTx) it stores
	// them there and leaves reloading to Load.
	Rotate(ctx context.Context, algs ...string) ([]keys.KeyInfo, error)
	// Load reloads the stored keys.
	Load(ctx context.Context) error
}

// Config configures the admin API.
type Config struct {
	// Clients is the client registry. Required.
	Clients storage.ClientStore
	// Keys lists and rotates signing keys. Required.
	Keys KeyManager
	// Users, when set, serves the users and the audit trail (/admin/users,
	// /admin/events). Audit records the changes made through them and
	// through Clients and Keys, each event in the transaction of its
	// change (so Clients, the keys' store and Audit's storage must be one
	// store); nil means one on Users that logs to Logger.
	Users storage.Storage
	Audit *provider.Audit
	// Registrations, when set, serves the initial access tokens of Dynamic
	// Client Registration (/admin/initial-access-tokens).
	Registrations storage.RegistrationStore
	// Secret is the system secret that client secrets are hashed with.
	// Required.
	Secret []byte
	// Token is the bearer token every request must present.
	//
	// An empty Token turns authentication off; then the API MUST listen on
	// a loopback address only. It then also refuses requests whose Host is
	// not a loopback name, so that a web page cannot reach it through DNS
	// rebinding.
	Token string
	// Dev allows http redirect URIs on any host, as in wxoidc dev.
	Dev bool
	// Profiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/, behind the same token as every admin request.
	//
	// Profiling SHOULD stay off in production: a profile names code paths
	// and costs CPU while it runs.
	Profiling bool
	// WeChat, when set, is what GET /admin/wechat reports: the configured
	// WeChat apps' health.
	WeChat *WeChatHealth
	// Stats, when set, answers GET /admin/stats (the console's overview).
	Stats storage.Stats
	// WeChatApps are the provider's WeChat apps (appid → kind); when set,
	// a client with the WeChat grant must name one of its Mini Programs.
	WeChatApps map[string]wechat.AppKind
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives one audit line per change (never a secret); nil
	// discards.
	Logger *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Clients == nil {
		errs = append(errs, errors.New("admin: clients: required"))
	}
	if c.Keys == nil {
		errs = append(errs, errors.New("admin: keys: required"))
	}
	if len(c.Secret) < 32 {
		errs = append(errs, errors.New("admin: secret: must be at least 32 bytes"))
	}
	return errors.Join(errs...)
}

// Handler is the admin API. Create it with New.
type Handler struct {
	cfg       Config
	tokenHash [sha256.Size]byte            // of cfg.Token; compared in constant time
	regTokens *provider.RegistrationTokens // makes initial access tokens; never nil after New
	log       *slog.Logger                 // never nil after New
	router    *mux.Router                  // read-only after New
}

// New validates cfg and returns the admin API.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)), log: cfg.Logger, regTokens: provider.NewRegistrationTokens(cfg.Secret)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	r := mux.NewRouter().UseEncodedPath() // client ids may hold escaped slashes
	r.HandleFunc(pathClients, h.listClients).Methods(http.MethodGet)
	r.HandleFunc(pathClients, h.createClient).Methods(http.MethodPost)
	r.HandleFunc(pathClient, h.getClient).Methods(http.MethodGet)
	r.HandleFunc(pathClient, h.replaceClient).Methods(http.MethodPut)
	r.HandleFunc(pathClient, h.deleteClient).Methods(http.MethodDelete)
	r.HandleFunc(pathClientSecret, h.rotateSecret).Methods(http.MethodPost)
	r.HandleFunc(pathKeys, h.listKeys).Methods(http.MethodGet)
	r.HandleFunc(pathKeysRotate, h.rotateKeys).Methods(http.MethodPost)
	r.HandleFunc(pathWeChat, h.wechatHealth).Methods(http.MethodGet)
	if cfg.Users != nil {
		r.HandleFunc(pathUsers, h.listUsers).Methods(http.MethodGet)
		r.HandleFunc(pathUsers, h.createUser).Methods(http.MethodPost)
		r.HandleFunc(pathUser, h.getUser).Methods(http.MethodGet)
		r.HandleFunc(pathUser, h.patchUser).Methods(http.MethodPatch)
		r.HandleFunc(pathUser, h.deleteUser).Methods(http.MethodDelete)
		r.HandleFunc(pathUserIdentity, h.unlinkIdentity).Methods(http.MethodDelete)
		r.HandleFunc(pathUserSessions, h.endSessions).Methods(http.MethodDelete)
		r.HandleFunc(pathEvents, h.listEvents).Methods(http.MethodGet)
	}
	if cfg.Registrations != nil {
		r.HandleFunc(pathIATs, h.listIATs).Methods(http.MethodGet)
		r.HandleFunc(pathIATs, h.createIAT).Methods(http.MethodPost)
		r.HandleFunc(pathIAT, h.revokeIAT).Methods(http.MethodDelete)
	}
	r.HandleFunc(pathStats, h.stats).Methods(http.MethodGet)
	if cfg.Profiling {
		r.HandleFunc(pathPprof+"cmdline", pprof.Cmdline).Methods(http.MethodGet)
		r.HandleFunc(pathPprof+"profile", pprof.Profile).Methods(http.MethodGet)
		r.HandleFunc(pathPprof+"symbol", pprof.Symbol).Methods(http.MethodGet, http.MethodPost)
		r.HandleFunc(pathPprof+"trace", pprof.Trace).Methods(http.MethodGet)
		r.PathPrefix(pathPprof).HandlerFunc(pprof.Index).Methods(http.MethodGet)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "No such admin resource.")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "The HTTP method is not allowed on this resource.")
	})
	h.router = r
	return h, nil
}

// Paths of the admin API.
const (
	pathClients      = "/admin/clients"
	pathClient       = "/admin/clients/{id}"
	pathClientSecret = "/admin/clients/{id}/secret"
	pathIATs         = "/admin/initial-access-tokens"
	pathIAT          = "/admin/initial-access-tokens/{id}"
	pathKeys         = "/admin/keys"
	pathKeysRotate   = "/admin/keys/rotate"
	pathPprof        = "/debug/pprof/"
)

// ServeHTTP authenticates the request and routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.authorized(w, r) {
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		// Browsers cannot send JSON cross-origin without a preflight that
		// this API never answers: one more guard for the tokenless mode.
		// PATCH takes a JSON merge patch (RFC 7396).
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/json" && !(r.Method == http.MethodPatch && mt == "application/merge-patch+json")) {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_request", "The request body must be application/json (PATCH: application/merge-patch+json).")
			return
		}
	}
	h.router.ServeHTTP(w, r)
}

// Route returns the path template r matches (e.g. "/admin/clients/{id}"),
// or "": request logs and metrics name requests by it, never by the raw
// path, which holds a client id.
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

func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.Token == "" {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "access_denied", "Without an admin token the admin API answers loopback hosts only.")
			return false
		}
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if !ok || subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxoidc-admin"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "The admin API needs the admin bearer token.")
		return false
	}
	return true
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// errorBody is an RFC 7591 §3.2.2 / RFC 6749 §5.2 shaped error.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Field names the document field at fault, when there is one.
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, Description: desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// serverError logs err (once, here) and answers 500 without details.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.ErrorContext(r.Context(), "admin: "+what, "error", err)
	writeError(w, http.StatusInternalServerError, "server_error", "The request failed; see the server log.")
}
