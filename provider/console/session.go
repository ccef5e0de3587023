package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/wxoidc/wxoidc/keys"
)

// keyring holds the keys the console derives from the system secret, one
// per purpose, so that none of them is the secret itself.
type keyring struct {
	seal  cipher.AEAD // seals session and sign-in cookies
	csrf  []byte      // keys CSRF tokens
	token []byte      // keys the admin token's fingerprint
}

func deriveKeys(secret []byte) keyring {
	block, _ := aes.NewCipher(keys.DeriveMAC(secret, keys.PurposeConsoleCookieSeal)) // 32 bytes: AES-256 never fails
	aead, _ := cipher.NewGCM(block)
	return keyring{seal: aead, csrf: keys.DeriveMAC(secret, keys.PurposeConsoleCSRF), token: keys.DeriveMAC(secret, keys.PurposeConsoleAdminToken)}
}

// Cookie names. The session and binding cookies are SameSite=Strict; the
// sign-in cookie must be Lax, since the issuer's redirect back is a
// cross-site navigation.
const (
	cookieSession = "wxoidc_console"
	cookieBinding = "wxoidc_console_b"
	cookieFlow    = "wxoidc_console_flow"
	cookieLang    = "wxoidc_console_lang"
)

// name returns a cookie's name: with the __Host- prefix when the console
// is served over https, so that no other host can plant it.
func (h *Handler) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

func (h *Handler) setCookie(w http.ResponseWriter, base, value string, maxAge int, sameSite http.SameSite) {
	path := Prefix
	if h.secure {
		path = "/" // __Host- cookies must have Path=/
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(base), Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: sameSite,
	})
}

func (h *Handler) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(h.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// seal encrypts v (as JSON) for cookie base; the cookie's name is bound in
// as additional data, so one cookie cannot stand in for another.
func (h *Handler) seal(base string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, h.keys.seal.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(h.keys.seal.Seal(nonce, nonce, plain, []byte(base))), nil
}

// open decrypts a sealed cookie value into v.
func (h *Handler) open(base, value string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(value)
	n := h.keys.seal.NonceSize()
	if err != nil || len(b) < n {
		return errors.New("console: malformed cookie")
	}
	plain, err := h.keys.seal.Open(nil, b[:n], b[n:], []byte(base))
	if err != nil {
		return errors.New("console: cookie does not open")
	}
	return json.Unmarshal(plain, v)
}

// session is what the session cookie holds.
type session struct {
	// Subject is the operator's sub; empty for a break-glass session.
	Subject string `json:"sub,omitempty"`
	// Name is the operator's name when signed in, for the page header.
	Name string `json:"name,omitempty"`
	// TokenFP is the admin token's fingerprint in a break-glass session.
	TokenFP   string    `json:"tfp,omitempty"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
}

// Roles a user can hold in the console.
const (
	roleAdmin  = "admin"
	roleViewer = "viewer"
)

// operator is the person behind a request, with the role they hold now.
type operator struct {
	session
	Role string // roleAdmin or roleViewer
}

// name is how the audit trail names the operator.
func (o operator) name() string {
	if o.Subject == "" {
		return "admin-token"
	}
	return "user:" + o.Subject
}

// display is how the page header names the operator.
func (o operator) display() string {
	switch {
	case o.Subject == "":
		return "admin token"
	case o.Name != "":
		return o.Name
	}
	return o.Subject
}

func (o operator) canChange() bool { return o.Role == roleAdmin }

// startSession sets the session cookie.
func (h *Handler) startSession(w http.ResponseWriter, s session) error {
	now := h.cfg.Now()
	s.IssuedAt, s.ExpiresAt = now.UTC(), now.Add(h.cfg.SessionLifetime).UTC()
	v, err := h.seal(cookieSession, s)
	if err != nil {
		return err
	}
	h.setCookie(w, cookieSession, v, int(h.cfg.SessionLifetime/time.Second), http.SameSiteStrictMode)
	return nil
}

func (h *Handler) endSession(w http.ResponseWriter) {
	h.setCookie(w, cookieSession, "", -1, http.SameSiteStrictMode)
}

// errNoRole is an operator who signed in but holds no console role (any
// more).
var errNoRole = errors.New("console: no console role")

// operatorOf returns the request's operator: the session cookie opened,
// unexpired, and its user's role checked now through the admin API. It
// returns (nil, nil) without a usable session, and errNoRole when the user
// is disabled, deleted or holds no console role.
func (h *Handler) operatorOf(r *http.Request) (*operator, error) {
	v := h.cookie(r, cookieSession)
	if v == "" {
		return nil, nil
	}
	var s session
	if err := h.open(cookieSession, v, &s); err != nil || !h.cfg.Now().Before(s.ExpiresAt) {
		return nil, nil
	}
	if s.Subject == "" {
		if h.tokenFP == "" || !hmac.Equal([]byte(s.TokenFP), []byte(h.tokenFP)) {
			return nil, nil // the token changed or was removed
		}
		return &operator{session: s, Role: roleAdmin}, nil
	}
	role, name, err := h.roleOf(r, s.Subject)
	if err != nil {
		return nil, err
	}
	if name != "" {
		s.Name = name
	}
	return &operator{session: s, Role: role}, nil
}

// userDoc is the part of the admin API's user document the console's
// sign-in needs.
type userDoc struct {
	Subject  string   `json:"sub"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled"`
}

// roleOf returns the console role (and name) of the user subject, through
// the admin API: errNoRole if the user is unknown, disabled or has none.
func (h *Handler) roleOf(r *http.Request, subject string) (role, name string, err error) {
	var u userDoc
	err = h.call(r.Context(), operator{Role: roleViewer, session: session{Subject: subject}}, http.MethodGet, "/admin/users/"+url.PathEscape(subject), nil, &u)
	if isStatus(err, http.StatusNotFound) {
		return "", "", errNoRole
	}
	if err != nil {
		return "", "", err
	}
	switch {
	case u.Disabled:
		return "", "", errNoRole
	case slices.Contains(u.Roles, roleAdmin):
		return roleAdmin, u.Name, nil
	case slices.Contains(u.Roles, roleViewer):
		return roleViewer, u.Name, nil
	}
	return "", "", errNoRole
}

// binding returns the browser's binding value (the CSRF tokens' anchor),
// setting a fresh one when the browser has none.
func (h *Handler) binding(w http.ResponseWriter, r *http.Request) string {
	if v := h.cookie(r, cookieBinding); len(v) >= 32 {
		return v
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	h.setCookie(w, cookieBinding, v, 0, http.SameSiteStrictMode)
	return v
}

// csrfToken is the CSRF token of every form in the browser with binding
// value b.
func (h *Handler) csrfToken(b string) string {
	m := hmac.New(sha256.New, h.keys.csrf)
	m.Write([]byte(b))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a posted form: sent from this origin when the
// browser says where from (Sec-Fetch-Site; Origin, which is "null" under
// Referrer-Policy no-referrer), and carrying the token bound to the
// browser's binding cookie.
func (h *Handler) checkCSRF(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != h.origin(r) {
		return false
	}
	b := h.cookie(r, cookieBinding)
	if b == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf_token")), []byte(h.csrfToken(b)))
}

// origin is the console's origin: that of Config.URL, else of the request.
func (h *Handler) origin(r *http.Request) string {
	if u, err := url.Parse(h.cfg.URL); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
