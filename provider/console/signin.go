package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
)

// flow is what the sign-in cookie holds between the redirect to the
// issuer and the callback.
type flow struct {
	State     string    `json:"state"`
	Nonce     string    `json:"nonce"`
	Verifier  string    `json:"verifier"`
	Next      string    `json:"next"`
	ExpiresAt time.Time `json:"exp"`
}

const flowLifetime = 10 * time.Minute

// loginPage shows the ways in: WeChat through the issuer and, when an
// admin token is configured, break-glass with the token.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if op, err := h.operatorOf(r); err == nil && op != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	msgKey := r.URL.Query().Get("m")
	if _, ok := messages[msgKey]; !ok || !strings.HasPrefix(msgKey, "login.") {
		msgKey = ""
	}
	h.render(w, r, http.StatusOK, "login", nil, map[string]any{
		"WeChat":  h.cfg.URL != "",
		"Token":   h.cfg.AdminToken != "",
		"Next":    localPath(r.URL.Query().Get("next")),
		"Message": msgKey,
	})
}

// oauth2Config is the console's client at the issuer.
func (h *Handler) oauth2Config(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	p, err := h.oidcProvider(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &oauth2.Config{
		ClientID: ClientID, RedirectURL: h.cfg.URL + "callback",
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"},
	}, p, nil
}

// oidcProvider discovers the issuer once; a failed discovery is retried
// on the next sign-in.
func (h *Handler) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, h.issuer), h.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	h.provider = p
	return p, nil
}

// startWeChat sends the browser to the issuer's authorization endpoint
// (code flow, PKCE S256, a nonce), keeping state, nonce and verifier in a
// sealed cookie for the callback. It is a link, not a form: a form's
// redirect to the issuer and on to WeChat would break CSP form-action
// 'self'. Starting a sign-in changes nothing; the callback accepts only
// the state of the browser's own cookie, so a code minted for someone
// else's sign-in cannot be planted (login CSRF).
func (h *Handler) startWeChat(w http.ResponseWriter, r *http.Request) {
	if h.cfg.URL == "" {
		h.errorPage(w, r, http.StatusNotFound, "errNotFound")
		return
	}
	oc, _, err := h.oauth2Config(r.Context())
	if err != nil {
		h.serverError(w, r, "discover the issuer", err)
		return
	}
	f := flow{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Next: localPath(r.URL.Query().Get("next")), ExpiresAt: h.cfg.Now().Add(flowLifetime).UTC()}
	v, err := h.seal(cookieFlow, f)
	if err != nil {
		h.serverError(w, r, "seal the sign-in cookie", err)
		return
	}
	h.setCookie(w, cookieFlow, v, int(flowLifetime/time.Second), http.SameSiteLaxMode)
	http.Redirect(w, r, oc.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce),
		oauth2.SetAuthURLParam("ui_locales", h.locale(r))), http.StatusSeeOther)
}

// callback finishes the sign-in: state and browser checked, code exchanged
// at the token endpoint (server-side, with the PKCE verifier), ID token
// verified (issuer, audience, signature, expiry, nonce), and the user's
// console role checked through the admin API.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f flow
	raw := h.cookie(r, cookieFlow)
	h.setCookie(w, cookieFlow, "", -1, http.SameSiteLaxMode) // single use
	if raw == "" || h.open(cookieFlow, raw, &f) != nil || !h.cfg.Now().Before(f.ExpiresAt) ||
		subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		h.errorPage(w, r, http.StatusBadRequest, "errSignInExpired")
		return
	}
	if e := q.Get("error"); e != "" {
		h.log.InfoContext(r.Context(), "console: sign-in refused by the issuer", "error", e)
		h.errorPage(w, r, http.StatusForbidden, "errSignInDenied")
		return
	}
	oc, p, err := h.oauth2Config(r.Context())
	if err != nil {
		h.serverError(w, r, "discover the issuer", err)
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, h.issuer)
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		h.log.WarnContext(r.Context(), "console: code exchange failed", "error", err)
		h.errorPage(w, r, http.StatusBadGateway, "errSignInFailed")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: ClientID, Now: h.cfg.Now}).Verify(oidc.ClientContext(r.Context(), h.issuer), rawID)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		h.log.WarnContext(r.Context(), "console: ID token refused", "error", err)
		h.errorPage(w, r, http.StatusBadGateway, "errSignInFailed")
		return
	}
	role, name, err := h.roleOf(r, idt.Subject)
	if errors.Is(err, errNoRole) {
		h.log.InfoContext(r.Context(), "console: sign-in refused: no console role", "sub", idt.Subject)
		h.endSession(w)
		h.errorPage(w, r, http.StatusForbidden, "errNoRole")
		return
	}
	if err != nil {
		h.serverError(w, r, "look up the operator", err)
		return
	}
	if err := h.startSession(w, session{Subject: idt.Subject, Name: name}); err != nil {
		h.serverError(w, r, "start a session", err)
		return
	}
	h.log.InfoContext(r.Context(), "console: signed in", "sub", idt.Subject, "role", role)
	h.continueTo(w, r, f.Next)
}

// breakGlass signs in with the admin token.
func (h *Handler) breakGlass(w http.ResponseWriter, r *http.Request) {
	if h.cfg.AdminToken == "" {
		h.errorPage(w, r, http.StatusNotFound, "errNotFound")
		return
	}
	if !h.checkCSRF(r) {
		h.errorPage(w, r, http.StatusForbidden, "errCSRF")
		return
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	want := sha256.Sum256([]byte(h.cfg.AdminToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		h.log.WarnContext(r.Context(), "console: break-glass sign-in with a wrong token")
		http.Redirect(w, r, Prefix+"login?m=login.badToken", http.StatusSeeOther)
		return
	}
	if err := h.startSession(w, session{TokenFP: h.tokenFP}); err != nil {
		h.serverError(w, r, "start a session", err)
		return
	}
	h.log.WarnContext(r.Context(), "console: signed in with the admin token (break-glass)")
	h.continueTo(w, r, r.PostFormValue("next"))
}

// continueTo sends the browser on to next after a sign-in. It answers with
// a page that moves on by itself rather than a redirect: a browser does not
// send a SameSite=Strict cookie on a navigation that a cross-site redirect
// started, and the issuer's redirect to the callback is one.
func (h *Handler) continueTo(w http.ResponseWriter, r *http.Request, next string) {
	h.render(w, r, http.StatusOK, "continue", nil, map[string]any{"Next": localPath(next)})
}

// logout ends the console session (not the issuer's login session).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(r) {
		h.errorPage(w, r, http.StatusForbidden, "errCSRF")
		return
	}
	h.endSession(w)
	http.Redirect(w, r, Prefix+"login?m=login.signedOut", http.StatusSeeOther)
}

// switchLanguage remembers the chosen language and goes back to next.
func (h *Handler) switchLanguage(w http.ResponseWriter, r *http.Request) {
	l := provider.SupportedLocale(pathVar(r, "lang"))
	if l == "" {
		h.errorPage(w, r, http.StatusNotFound, "errNotFound")
		return
	}
	h.setCookie(w, cookieLang, l, 365*24*3600, http.SameSiteLaxMode)
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// localPath returns p if it is a path inside the console, else the
// console's home: nothing may send the browser elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, Prefix) || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return Prefix
	}
	return p
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
