package weblogin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Authenticate implements provider.Authenticator. With a login session
// that satisfies prompt and max_age (OpenID Connect Core §3.1.2.1) and, for
// third-party clients, a remembered consent covering the requested scopes,
// it returns the session's authentication. Otherwise it sends the browser
// to /login or shows the consent page; with prompt=none it returns
// login_required or consent_required instead.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*provider.Authentication, error) {
	ctx := r.Context()
	form := ar.GetRequestForm()
	prompts := strings.Fields(form.Get("prompt"))
	sess, user, err := a.sessionUser(ctx, r)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if sess == nil || slices.Contains(prompts, "login") || tooOld(sess.AuthTime, form.Get("max_age"), a.now()) {
		if slices.Contains(prompts, "none") {
			return nil, fosite.ErrLoginRequired.WithHint("The person is not signed in (or not recently enough for max_age) and prompt=none forbids asking.")
		}
		return nil, a.startLogin(w, r, ar)
	}
	need, err := a.needConsent(ctx, sess.Subject, ar, prompts)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if need {
		if slices.Contains(prompts, "none") {
			return nil, fosite.ErrConsentRequired.WithHint("The client needs the person's consent and prompt=none forbids asking.")
		}
		return nil, a.showConsent(w, r, ar, sess.Subject)
	}
	amr := sess.AMR
	if len(amr) == 0 {
		amr = []string{amrWeChat} // sessions from before amr was kept
	}
	return &provider.Authentication{Subject: sess.Subject, AuthTime: sess.AuthTime, AMR: amr,
		SID: provider.SessionSID(sess.ID), SessionExpiresAt: sess.ExpiresAt, User: user}, nil
}

// tooOld reports whether a login at authTime fails max_age (in seconds).
// max_age=0 always does (OpenID Connect Core §3.1.2.1: like prompt=login).
func tooOld(authTime time.Time, maxAge string, now time.Time) bool {
	if maxAge == "" {
		return false
	}
	n, err := strconv.ParseInt(maxAge, 10, 64)
	if err != nil || n < 0 {
		return false // fosite ignores it too
	}
	return now.Sub(authTime) > time.Duration(n)*time.Second
}

// resumeParams are the parameters that resume ar once the step named by
// drop ("login" or "consent") is done: prompt loses that value, and after
// a login max_age=0 goes too (both have just been satisfied; leaving them
// would send the browser round again).
func resumeParams(ar fosite.AuthorizeRequester, drop string) url.Values {
	v := provider.AuthorizeParams(ar)
	if p := v.Get("prompt"); p != "" {
		kept := slices.DeleteFunc(strings.Fields(p), func(s string) bool { return s == drop })
		if len(kept) == 0 {
			v.Del("prompt")
		} else {
			v.Set("prompt", strings.Join(kept, " "))
		}
	}
	if drop == "login" && v.Get("max_age") == "0" {
		v.Del("max_age")
	}
	return v
}

// startLogin keeps ar and sends the browser to /login.
func (a *Authenticator) startLogin(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) error {
	p := a.newPending(w, r, ar, stepLogin, "login")
	id, ok, err := a.admitSave(r, p)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	} else if !ok {
		return errTooManyPending
	}
	noStore(w)
	q := url.Values{"login": {id}}
	if l := ar.GetRequestForm().Get("ui_locales"); l != "" {
		q.Set("ui_locales", l) // the login page speaks the language asked for
	}
	http.Redirect(w, r, a.url(PathLogin)+"?"+q.Encode(), http.StatusSeeOther)
	return nil
}

// needConsent reports whether subject must be asked before the client gets
// the requested scopes.
func (a *Authenticator) needConsent(ctx context.Context, subject string, ar fosite.AuthorizeRequester, prompts []string) (bool, error) {
	if c, ok := ar.GetClient().(*storage.Client); ok && c.SkipConsent {
		return false, nil
	}
	if slices.Contains(prompts, "consent") {
		return true, nil
	}
	c, err := a.cfg.Storage.Consent(ctx, subject, ar.GetClient().GetID())
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range ar.GetRequestedScopes() {
		if !slices.Contains(c.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// denyToClient ends the authorization request of p with an error response
// to the client's (validated) redirect URI (provider.WriteErrorRedirect).
func (a *Authenticator) denyToClient(w http.ResponseWriter, r *http.Request, p *pending, rfcErr *fosite.RFC6749Error) {
	u, err := url.Parse(p.RedirectURI)
	if err != nil || p.RedirectURI == "" {
		noStore(w)
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errDenied", "")
		return
	}
	provider.WriteErrorRedirect(w, provider.ErrorRedirect{
		RedirectURI: u, ResponseMode: fosite.ResponseModeType(p.ResponseMode), State: p.State, Issuer: a.cfg.Issuer,
	}, rfcErr, a.cfg.Dev)
}

// refusePage tells the person why they may not sign in (message key) and
// offers the way back to the client, which then receives rfcErr
// (access_denied): a person who cannot sign in reads why, and the app
// learns that the request ended.
func (a *Authenticator) refusePage(w http.ResponseWriter, r *http.Request, p *pending, key string, rfcErr *fosite.RFC6749Error) {
	a.log.InfoContext(r.Context(), "sign-in refused", "client_id", p.ClientID, "reason", key)
	u, err := url.Parse(p.RedirectURI)
	if err != nil || p.RedirectURI == "" {
		a.errorPage(w, r, p.Locale, http.StatusForbidden, key, "")
		return
	}
	target, form := provider.ErrorRedirectTarget(provider.ErrorRedirect{
		RedirectURI: u, ResponseMode: fosite.ResponseModeType(p.ResponseMode), State: p.State, Issuer: a.cfg.Issuer,
	}, rfcErr, a.cfg.Dev)
	a.render(w, http.StatusForbidden, "refused", p.Locale, map[string]any{"Message": msg(p.Locale, key), "Code": key, "Back": target, "Form": form})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
