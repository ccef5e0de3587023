package weblogin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Cookie names. Both are HttpOnly, SameSite=Lax and, outside dev, Secure.
// With an https issuer they carry the __Host- prefix (RFC 6265bis §4.1.3.2):
// the browser then accepts them only from this host, over https, with
// Path=/ and no Domain, so a sibling subdomain or a plain-HTTP response
// cannot plant one (cookie tossing). With an http issuer (dev) they are
// scoped to the issuer's path under their bare names.
const (
	// cookieSession holds the login session's ID (kept hashed in storage).
	cookieSession = "wxoidc_session"
	// cookieBinding binds login states and forms to one browser: a value
	// the server issued (random bytes and their keyed MAC, see
	// newBinding), whose hash is stored with each login state, and which
	// keys the CSRF token of each form. It lives as long as the browser
	// session.
	cookieBinding = "wxoidc_browser"
)

// hostPrefix is the cookie-name prefix that pins a cookie to this host.
const hostPrefix = "__Host-"

// cookieName is the name cookie base has on this issuer.
func (a *Authenticator) cookieName(base string) string {
	if a.hostCookies {
		return hostPrefix + base
	}
	return base
}

func (a *Authenticator) cookiePath() string {
	if a.hostCookies || a.basePath == "" {
		return "/"
	}
	return a.basePath
}

func (a *Authenticator) setCookie(w http.ResponseWriter, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: a.cookieName(base), Value: value, Path: a.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: !a.cfg.Dev || a.hostCookies, SameSite: http.SameSiteLaxMode,
	})
}

// cookie returns the value of cookie base, or "".
func (a *Authenticator) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(a.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// bindingRandBytes is the size of a binding value's random part.
const bindingRandBytes = 24

// newBinding returns a fresh binding value: random bytes and their MAC
// under the binding key, base64url, joined by a dot.
func (a *Authenticator) newBinding() string {
	b := make([]byte, bindingRandBytes)
	rand.Read(b)
	r := base64.RawURLEncoding.EncodeToString(b)
	return r + "." + a.bindingMAC(r)
}

func (a *Authenticator) bindingMAC(random string) string {
	m := hmac.New(sha256.New, a.bindingKey)
	m.Write([]byte(random))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validBinding reports whether v is a binding value this provider issued
// (its MAC verifies). Values a browser was made to carry by someone else
// — made up, or of another deployment — are not.
func (a *Authenticator) validBinding(v string) bool {
	random, mac, ok := strings.Cut(v, ".")
	if !ok || len(random) != base64.RawURLEncoding.EncodedLen(bindingRandBytes) {
		return false
	}
	if _, err := base64.RawURLEncoding.DecodeString(random); err != nil {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(a.bindingMAC(random)))
}

// bindingOf returns the first binding value r carries that the provider
// issued, or "".
func (a *Authenticator) bindingOf(r *http.Request) string {
	for _, c := range r.CookiesNamed(a.cookieName(cookieBinding)) {
		if a.validBinding(c.Value) {
			return c.Value
		}
	}
	return ""
}

// binding returns the browser's binding value, setting a new one when the
// browser has none or none the provider issued.
func (a *Authenticator) binding(w http.ResponseWriter, r *http.Request) string {
	if v := a.bindingOf(r); v != "" {
		return v
	}
	v := a.newBinding()
	a.setCookie(w, cookieBinding, v, 0)
	// Later reads in this request see the new value.
	r.Header.Add("Cookie", (&http.Cookie{Name: a.cookieName(cookieBinding), Value: v}).String())
	return v
}

// boundTo reports whether the request comes from the browser whose binding
// hash is want.
func (a *Authenticator) boundTo(r *http.Request, want string) bool {
	v := a.bindingOf(r)
	if want == "" || v == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashHex(v)), []byte(want)) == 1
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
	b := a.bindingOf(r)
	if b == "" {
		return false
	}
	want := a.csrfToken(b, formID)
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
	bs, _, err := a.sessionUser(ctx, r)
	return bs, err
}

// sessionUser returns the browser's valid login session and its user, or
// nil and nil.
func (a *Authenticator) sessionUser(ctx context.Context, r *http.Request) (*storage.BrowserSession, *storage.User, error) {
	id := a.cookie(r, cookieSession)
	if id == "" {
		return nil, nil, nil
	}
	// One read: no session, or a user who is gone, is no login.
	bs, u, err := a.cfg.Storage.BrowserSessionUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return &bs, &u, nil
}

// startSession replaces the browser's login session (if any) with a new one
// for subject, authenticated now, under a new identifier: whatever session
// id the browser carried before the login — perhaps one an attacker
// planted — is deleted and never becomes a signed-in session.
func (a *Authenticator) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, subject string, amr []string) error {
	bs, err := a.replaceSession(ctx, r, subject, amr)
	if err != nil {
		return err
	}
	a.setSessionCookie(w, bs)
	return nil
}

// replaceSession is the storage part of startSession: it deletes the
// browser's old session and stores the new one, which the caller sends
// with setSessionCookie once it is stored (committed, in a transaction).
func (a *Authenticator) replaceSession(ctx context.Context, r *http.Request, subject string, amr []string) (storage.BrowserSession, error) {
	now := a.now()
	if old := a.cookie(r, cookieSession); old != "" {
		if err := a.cfg.Storage.DeleteBrowserSession(ctx, old); err != nil {
			return storage.BrowserSession{}, err
		}
		// The replaced session has ended for its clients too.
		if _, err := a.cfg.Storage.EnqueueSessionLogouts(ctx, provider.SessionSID(old), now, now.Add(provider.BackchannelRetryFor)); err != nil {
			return storage.BrowserSession{}, err
		}
	}
	bs := storage.BrowserSession{
		ID: randomToken(), Subject: subject,
		AuthTime:  now.UTC(),
		ExpiresAt: now.Add(a.cfg.SessionLifetime).UTC(),
		AMR:       amr,
	}
	if err := a.cfg.Storage.CreateBrowserSession(ctx, bs); err != nil {
		return storage.BrowserSession{}, err
	}
	return bs, nil
}

// setSessionCookie gives the browser the session bs.
func (a *Authenticator) setSessionCookie(w http.ResponseWriter, bs storage.BrowserSession) {
	a.setCookie(w, cookieSession, bs.ID, int(a.cfg.SessionLifetime/time.Second))
}

// EndSession implements provider.LogoutAuthenticator: it deletes the
// browser's login session and its cookie and queues the back-channel
// logouts of the clients the session signed in to.
func (a *Authenticator) EndSession(w http.ResponseWriter, r *http.Request) error {
	id := a.cookie(r, cookieSession)
	if id == "" {
		return nil
	}
	if err := a.cfg.Storage.DeleteBrowserSession(r.Context(), id); err != nil {
		return err
	}
	a.setCookie(w, cookieSession, "", -1)
	now := a.now()
	_, err := a.cfg.Storage.EnqueueSessionLogouts(r.Context(), provider.SessionSID(id), now, now.Add(provider.BackchannelRetryFor))
	return err
}

// SessionSubject implements provider.SessionReader.
func (a *Authenticator) SessionSubject(r *http.Request) (string, error) {
	bs, err := a.session(r.Context(), r)
	if err != nil || bs == nil {
		return "", err
	}
	return bs.Subject, nil
}

// FormToken implements provider.FormGuard: the provider's forms are
// bound to the browser like the login step's own.
func (a *Authenticator) FormToken(w http.ResponseWriter, r *http.Request, form string) string {
	return a.csrfToken(a.binding(w, r), "provider:"+form)
}

// CheckForm implements provider.FormGuard.
func (a *Authenticator) CheckForm(r *http.Request, form string) bool {
	return a.checkCSRF(r, "provider:"+form)
}
