package provider

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"

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
	clientID := r.Form.Get("client_id")
	redirect := r.Form.Get("post_logout_redirect_uri")
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
	// Without an id_token_hint nothing shows that the person's own relying
	// party sent them: ask before signing them out (RP-Initiated Logout
	// §2), so a link on any site cannot end their session. The answer is a
	// POST, which the SameSite=Lax session cookie accompanies only from
	// this site.
	if hint == "" && !(r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes") {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		confirmPage.Execute(w, map[string]string{
			"Action": p.url(pathLogout), "ClientID": clientID, "Redirect": redirect, "State": r.Form.Get("state"),
		})
		return
	}
	if la, ok := p.cfg.Authenticator.(LogoutAuthenticator); ok {
		if err := la.EndSession(w, r); err != nil {
			p.log.ErrorContext(ctx, "end login session", "error", err)
			p.logoutError(w, "The login session could not be ended; try again.")
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if redirect == "" {
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		logoutPage.Execute(w, "You have been signed out.")
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
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	logoutPage.Execute(w, msg)
}

var confirmPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out?</title></head>
<body><main><h1>Sign out?</h1><p>Do you want to sign out of your account? 要退出登录吗？</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="confirm" value="yes">
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
