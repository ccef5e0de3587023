package weblogin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// Cookie names. Both are HttpOnly, SameSite=Lax, Secure outside dev, and
// scoped to the issuer's path.
const (
	// cookieSession holds the login session's ID (kept hashed in storage).
	cookieSession = "wxoidc_session"
	// cookieBinding binds login states and forms to one browser: a random
	// value whose hash is stored with each login state, and which keys the
	// CSRF token of each form. It lives as long as the browser session.
	cookieBinding = "wxoidc_browser"
)

func (a *Authenticator) cookiePath() string {
	if a.basePath == "" {
		return "/"
	}
	return a.basePath
}

func (a *Authenticator) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: a.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: !a.cfg.Dev, SameSite: http.SameSiteLaxMode,
	})
}

// binding returns the browser's binding value, setting a new one when the
// browser has none.
func (a *Authenticator) binding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(cookieBinding); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := randomToken()
	a.setCookie(w, cookieBinding, v, 0)
	return v
}

// boundTo reports whether the request comes from the browser whose binding
// hash is want.
func boundTo(r *http.Request, want string) bool {
	c, err := r.Cookie(cookieBinding)
	if err != nil || want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashHex(c.Value)), []byte(want)) == 1
}

// csrfToken is the CSRF token of form formID in the browser with binding
// value b.
func (a *Authenticator) csrfToken(b, formID string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(b))
	m.Write([]byte{0})
	m.Write([]byte(formID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a posted form: same-origin when the browser says so,
// the binding cookie present, and the token matching it.
func (a *Authenticator) checkCSRF(r *http.Request, formID string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != a.origin() {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	c, err := r.Cookie(cookieBinding)
	if err != nil {
		return false
	}
	want := a.csrfToken(c.Value, formID)
	return hmac.Equal([]byte(r.PostFormValue("csrf_token")), []byte(want))
}

func (a *Authenticator) origin() string {
	u := a.cfg.Issuer
	// scheme://host of the issuer
	for i := len("https://"); i < len(u); i++ {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

// session returns the browser's valid login session, or nil.
func (a *Authenticator) session(ctx context.Context, r *http.Request) (*storage.BrowserSession, error) {
	c, err := r.Cookie(cookieSession)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	bs, err := a.cfg.Storage.BrowserSession(ctx, c.Value)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := a.cfg.Storage.User(ctx, bs.Subject); errors.Is(err, storage.ErrNotFound) {
		return nil, nil // the user is gone
	} else if err != nil {
		return nil, err
	}
	return &bs, nil
}

// startSession replaces the browser's login session (if any) with a new one
// for subject, authenticated now.
func (a *Authenticator) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, subject string) error {
	if c, err := r.Cookie(cookieSession); err == nil && c.Value != "" {
		if err := a.cfg.Storage.DeleteBrowserSession(ctx, c.Value); err != nil {
			return err
		}
	}
	now := a.now()
	bs := storage.BrowserSession{
		ID: randomToken(), Subject: subject,
		AuthTime:  now.UTC(),
		ExpiresAt: now.Add(a.cfg.SessionLifetime).UTC(),
	}
	if err := a.cfg.Storage.CreateBrowserSession(ctx, bs); err != nil {
		return err
	}
	a.setCookie(w, cookieSession, bs.ID, int(a.cfg.SessionLifetime/time.Second))
	return nil
}

// EndSession implements provider.LogoutAuthenticator: it deletes the
// browser's login session and its cookie.
func (a *Authenticator) EndSession(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(cookieSession)
	if err != nil || c.Value == "" {
		return nil
	}
	if err := a.cfg.Storage.DeleteBrowserSession(r.Context(), c.Value); err != nil {
		return err
	}
	a.setCookie(w, cookieSession, "", -1)
	return nil
}
