package weblogin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// PathAccountDelete is the account page's "Delete my account": GET shows
// what erasure means and asks to confirm, POST erases.
const PathAccountDelete = "/login/account/delete"

// handleAccountDelete serves the confirmation (GET) and the erasure (POST)
// of the signed-in person's account. Like POST /account/delete, it needs a
// sign-in within Users.RecentSignIn.
func (a *Authenticator) handleAccountDelete(w http.ResponseWriter, r *http.Request) {
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
		if !a.checkCSRF(r, "account-delete") {
			a.errorPage(w, r, locale, http.StatusForbidden, "errCSRF", "")
			return
		}
	}
	if sess == nil {
		a.errorPage(w, r, locale, http.StatusUnauthorized, "errNotSignedIn", "")
		return
	}
	if within := a.cfg.Users.RecentSignIn(); a.now().Sub(sess.AuthTime) > within {
		a.render(w, http.StatusForbidden, "error", locale, map[string]any{
			"Message": fmt.Sprintf(msg(locale, "errRecentSignIn"), durationText(locale, within)), "Code": "errRecentSignIn",
		})
		return
	}
	if r.Method != http.MethodPost {
		a.render(w, http.StatusOK, "accountdelete", locale, map[string]any{
			"CSRF":   a.csrfToken(a.binding(w, r), "account-delete"),
			"Action": a.url(PathAccountDelete),
			"Cancel": a.url(PathConsents),
		})
		return
	}
	audit := a.cfg.Users.Audit
	if audit == nil {
		audit = &provider.Audit{Storage: a.cfg.Storage, Logger: a.log}
	}
	err = audit.RecordWith(ctx, func(ctx context.Context) error {
		return a.cfg.Storage.DeleteUser(ctx, sess.Subject)
	}, storage.Event{Type: storage.EventUserDeleted, Subject: sess.Subject, IP: provider.RequestIP(r), Details: map[string]any{"by": "self", "via": "account_page"}})
	if err != nil {
		a.serverError(w, r, locale, "delete account", err)
		return
	}
	a.setCookie(w, cookieSession, "", -1) // its row went with the account
	a.render(w, http.StatusOK, "accountdeleted", locale, map[string]any{})
}

// durationText says d in locale's words: "10 分钟", "30 seconds".
func durationText(locale string, d time.Duration) string {
	n, zh, en := int(d/time.Second), "秒", "second"
	if d%time.Minute == 0 {
		n, zh, en = int(d/time.Minute), "分钟", "minute"
	}
	if locale != localeEN {
		return fmt.Sprintf("%d %s", n, zh)
	}
	if n != 1 {
		en += "s"
	}
	return fmt.Sprintf("%d %s", n, en)
}
