package weblogin

import (
	"net/http"
	"slices"
	"sort"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// showConsent keeps ar and shows the consent page for it.
func (a *Authenticator) showConsent(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, subject string) error {
	ctx := r.Context()
	p := a.newPending(w, r, ar, stepConsent, "consent")
	p.Subject = subject
	p.Scopes = slices.Clone(ar.GetRequestedScopes())
	id, ok, err := a.admitSave(r, p)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	} else if !ok {
		return errTooManyPending
	}
	c, _ := ar.GetClient().(*storage.Client)
	name := ar.GetClient().GetID()
	if c != nil && c.Name != "" {
		name = c.Name
	}
	user, err := a.cfg.Storage.User(ctx, subject)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	b := a.binding(w, r)
	a.render(w, http.StatusOK, "consent", p.Locale, map[string]any{
		"Client":    name,
		"ClientID":  ar.GetClient().GetID(),
		"User":      displayName(user),
		"Scopes":    scopeLines(p.Locale, p.Scopes),
		"ConsentID": id,
		"CSRF":      a.csrfToken(b, "consent:"+id),
		"Action":    a.url(PathConsent),
		"Manage":    a.url(PathConsents),
	})
	return nil
}

func displayName(u storage.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Subject
}

// handleConsent serves POST /login/consent: the person's answer.
func (a *Authenticator) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		a.errorPage(w, r, "", http.StatusBadRequest, "errForm", "")
		return
	}
	id := r.PostFormValue("consent")
	if !a.checkCSRF(r, "consent:"+id) {
		a.errorPage(w, r, "", http.StatusForbidden, "errCSRF", "")
		return
	}
	p, msg, err := a.consume(ctx, r, id, stepConsent)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	sess, err := a.session(ctx, r)
	if err != nil {
		a.serverError(w, r, p.Locale, "load login session", err)
		return
	}
	if sess == nil || sess.Subject != p.Subject {
		// Signed out (or in as someone else) since the page was shown.
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errStateExpired", a.authorizeURL(p))
		return
	}
	if r.PostFormValue("action") != "allow" {
		a.denyToClient(w, r, p, fosite.ErrAccessDenied.WithHint("The person did not consent."))
		return
	}
	scopes := slices.Clone(p.Scopes)
	if old, err := a.cfg.Storage.Consent(ctx, p.Subject, p.ClientID); err == nil {
		scopes = append(scopes, old.Scopes...)
	}
	sort.Strings(scopes)
	scopes = slices.Compact(scopes)
	if err := a.cfg.Storage.PutConsent(ctx, storage.Consent{Subject: p.Subject, ClientID: p.ClientID, Scopes: scopes, GrantedAt: a.now().UTC()}); err != nil {
		a.serverError(w, r, p.Locale, "put consent", err)
		return
	}
	noStore(w)
	http.Redirect(w, r, a.authorizeURL(p), http.StatusSeeOther)
}

// handleConsents serves GET /login/consents (the signed-in person's
// consents) and POST /login/consents (withdraw one: client_id).
func (a *Authenticator) handleConsents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	locale := pickLocale(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language"))
	sess, err := a.session(ctx, r)
	if err != nil {
		a.serverError(w, r, locale, "load login session", err)
		return
	}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			a.errorPage(w, r, locale, http.StatusBadRequest, "errForm", "")
			return
		}
		if !a.checkCSRF(r, "consents") {
			a.errorPage(w, r, locale, http.StatusForbidden, "errCSRF", "")
			return
		}
		if sess == nil {
			a.errorPage(w, r, locale, http.StatusUnauthorized, "errNotSignedIn", "")
			return
		}
		if err := a.cfg.Storage.DeleteConsent(ctx, sess.Subject, r.PostFormValue("client_id")); err != nil {
			a.serverError(w, r, locale, "delete consent", err)
			return
		}
		// The client's sessions of this person end: back-channel logout.
		now := a.now()
		if _, err := a.cfg.Storage.EnqueueSubjectLogouts(ctx, sess.Subject, r.PostFormValue("client_id"), now, now.Add(provider.BackchannelRetryFor)); err != nil {
			a.log.WarnContext(ctx, "backchannel logout: enqueue", "error", err)
		}
		noStore(w)
		http.Redirect(w, r, a.url(PathConsents), http.StatusSeeOther)
		return
	}
	if sess == nil {
		a.errorPage(w, r, locale, http.StatusUnauthorized, "errNotSignedIn", "")
		return
	}
	list, err := a.cfg.Storage.Consents(ctx, sess.Subject)
	if err != nil {
		a.serverError(w, r, locale, "list consents", err)
		return
	}
	type row struct {
		ClientID, Client string
		Scopes           []scopeLine
		GrantedAt        string
	}
	rows := make([]row, 0, len(list))
	for _, c := range list {
		name := c.ClientID
		if cl, err := a.cfg.Storage.Client(ctx, c.ClientID); err == nil && cl.Name != "" {
			name = cl.Name
		}
		rows = append(rows, row{ClientID: c.ClientID, Client: name, Scopes: scopeLines(locale, c.Scopes), GrantedAt: c.GrantedAt.Format("2006-01-02 15:04 MST")})
	}
	a.render(w, http.StatusOK, "consents", locale, map[string]any{
		"Consents": rows,
		"CSRF":     a.csrfToken(a.binding(w, r), "consents"),
		"Action":   a.url(PathConsents),
		// The confirmation page of "Delete my account".
		"DeleteAccount": a.url(PathAccountDelete),
	})
}
