package provider

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// handleLogout serves RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0 §2): it ends the provider's login session and, when the
// relying party names a post_logout_redirect_uri registered for it,
// redirects there with state.
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.logoutError(w, "The logout request could not be parsed.")
		return
	}
	hint := r.Form.Get("id_token_hint")
	var hintSub string
	clientID := r.Form.Get("client_id")
	redirect := r.Form.Get("post_logout_redirect_uri")
	var hintSID string // the session the relying party's ID token names
	if hint != "" {
		claims, err := p.idSigner.verifyIDTokenHint(ctx, hint)
		if err != nil || claims["iss"] != p.cfg.Issuer {
			p.logoutError(w, "The id_token_hint was not issued by this provider.")
			return
		}
		aud, _ := claims["aud"].([]any)
		if s, ok := claims["aud"].(string); ok {
			aud = []any{s}
		}
		if len(aud) == 0 {
			p.logoutError(w, "The id_token_hint has no audience.")
			return
		}
		hintClient, _ := aud[0].(string)
		if clientID != "" && clientID != hintClient {
			p.logoutError(w, "client_id does not match the audience of id_token_hint.")
			return
		}
		clientID = hintClient
		hintSub, _ = claims["sub"].(string)
		hintSID, _ = claims["sid"].(string)
	}
	if redirect != "" {
		if clientID == "" {
			p.logoutError(w, "post_logout_redirect_uri needs id_token_hint or client_id to identify the client.")
			return
		}
		c, err := p.cfg.Storage.Client(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			p.logoutError(w, "The client is unknown.")
			return
		}
		if err != nil {
			p.logoutError(w, "The logout request could not be completed; try again.")
			return
		}
		if !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			p.logoutError(w, "post_logout_redirect_uri is not registered for this client.")
			return
		}
	}
	confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes"
	if confirmed && !p.checkForm(r, formLogout) {
		p.logoutPage(w, http.StatusForbidden, "The sign-out form has expired or did not come from this site. Go back and try again.")
		return
	}
	// Ask before signing the person out (RP-Initiated Logout §2) unless an
	// id_token_hint shows that their own relying party sent them: without
	// a hint, or with the hint of another user (any valid ID token, even
	// an attacker's own, would otherwise end the victim's session), a link
	// on any site could end their session. The answer is a POST carrying a
	// token bound to this browser, from this origin.
	if !confirmed {
		ask := hint == ""
		if !ask {
			other, err := p.sessionOfAnother(r, hintSub)
			if err != nil {
				p.log.ErrorContext(ctx, "read login session", "error", err)
				p.logoutPage(w, http.StatusServiceUnavailable, "The logout request could not be completed; try again.")
				return
			}
			ask = other
		}
		if ask {
			PageHeaders(w.Header())
			w.Header().Set("Content-Type", "text/html;charset=UTF-8")
			confirmPage.Execute(w, map[string]string{
				"Action": p.url(pathLogout), "ClientID": clientID, "Redirect": redirect, "State": r.Form.Get("state"),
				"CSRF": p.formToken(w, r, formLogout),
			})
			return
		}
	}
	if la, ok := p.cfg.Authenticator.(LogoutAuthenticator); ok {
		if err := la.EndSession(w, r); err != nil {
			p.log.ErrorContext(ctx, "end login session", "error", err)
			p.logoutError(w, "The login session could not be ended; try again.")
			return
		}
	}
	if hintSID != "" {
		// The authenticator ended the browser's session and queued its
		// back-channel logouts; the session the ID token names ends for
		// the relying parties too (nothing is queued twice).
		now := time.Now()
		if _, err := p.cfg.Storage.EnqueueSessionLogouts(ctx, hintSID, now, now.Add(BackchannelRetryFor)); err != nil {
			p.log.WarnContext(ctx, "backchannel logout: enqueue", "error", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if redirect == "" {
		p.logoutPage(w, http.StatusOK, "You have been signed out.")
		return
	}
	u, _ := url.Parse(redirect)
	if st := r.Form.Get("state"); st != "" {
		q := u.Query()
		q.Set("state", st)
		u.RawQuery = q.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (p *Provider) logoutError(w http.ResponseWriter, msg string) {
	p.logoutPage(w, http.StatusBadRequest, msg)
}

func (p *Provider) logoutPage(w http.ResponseWriter, status int, msg string) {
	PageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(status)
	logoutPage.Execute(w, msg)
}

// formLogout names the logout confirmation form for FormGuard.
const formLogout = "logout"

// SessionReader is implemented by Authenticators that keep a login
// session: SessionSubject returns the sub of the browser's signed-in user,
// or "" when it has no session.
type SessionReader interface {
	SessionSubject(r *http.Request) (string, error)
}

// FormGuard is implemented by Authenticators that protect forms against
// cross-site request forgery with a token bound to the browser; the
// provider's own forms (the logout confirmation) use it so that they are
// protected as the login step's are. FormToken returns the token of the
// form named form for this browser (it may set a cookie); CheckForm
// verifies a posted form's csrf_token (and its origin).
type FormGuard interface {
	FormToken(w http.ResponseWriter, r *http.Request, form string) string
	CheckForm(r *http.Request, form string) bool
}

// sessionOfAnother reports whether the browser is signed in as someone
// other than sub.
func (p *Provider) sessionOfAnother(r *http.Request, sub string) (bool, error) {
	sr, ok := p.cfg.Authenticator.(SessionReader)
	if !ok {
		return false, nil
	}
	current, err := sr.SessionSubject(r)
	if err != nil {
		return false, err
	}
	return current != "" && current != sub, nil
}

func (p *Provider) formToken(w http.ResponseWriter, r *http.Request, form string) string {
	if g, ok := p.cfg.Authenticator.(FormGuard); ok {
		return g.FormToken(w, r, form)
	}
	return ""
}

// checkForm verifies a posted form of the provider's: from this origin
// (Origin, Sec-Fetch-Site), and with the Authenticator's CSRF token when
// it has a FormGuard.
func (p *Provider) checkForm(r *http.Request, form string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != p.origin() {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	if g, ok := p.cfg.Authenticator.(FormGuard); ok {
		return g.CheckForm(r, form)
	}
	return true
}

// origin is the issuer's scheme://host.
func (p *Provider) origin() string {
	u, err := url.Parse(p.cfg.Issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var confirmPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out?</title></head>
<body><main><h1>Sign out?</h1><p>Do you want to sign out of your account? 要退出登录吗？</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="confirm" value="yes">
{{if .CSRF}}<input type="hidden" name="csrf_token" value="{{.CSRF}}">{{end}}
{{if .ClientID}}<input type="hidden" name="client_id" value="{{.ClientID}}">{{end}}
{{if .Redirect}}<input type="hidden" name="post_logout_redirect_uri" value="{{.Redirect}}">{{end}}
{{if .State}}<input type="hidden" name="state" value="{{.State}}">{{end}}
<button type="submit">Sign out / 退出</button>
</form></main></body></html>
`))

var logoutPage = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out</title></head>
<body><main><h1>Sign out</h1><p>{{.}}</p></main></body></html>
`))
