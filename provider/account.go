package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// PathAccountDelete is where a signed-in person erases their own account
// (SPEC §3, §10).
const PathAccountDelete = "/account/delete"

// handleAccountDelete serves POST /account/delete: the person the bearer
// access token was issued to erases their account (PIPL Art. 47; WeChat's
// rule that a Mini Program that registers accounts offers 账号注销). The
// token's sign-in (auth_time) must be at most Users.RecentSignIn old
// (users.account_delete_max_age; 10 minutes by default), so that a
// token lifted from a device left signed in cannot erase anyone. Erasure is
// one transaction (storage.UserStore.DeleteUser) with its user_deleted
// event.
func (p *Provider) handleAccountDelete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", "The request could not be parsed.")
		return
	}
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q`, p.cfg.Issuer))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "The request carries no access token."})
		return
	}
	tu, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if err != nil || tu != fosite.AccessToken {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	sess := ar.GetSession().(*Session)
	if sess.Subject == "" || sess.Subject == ar.GetClient().GetID() {
		p.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not issued to a person.")
		return
	}
	if within := p.users.RecentSignIn(); sess.Claims.AuthTime.IsZero() || p.cfg.Now().Sub(sess.Claims.AuthTime) > within {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": "login_required",
			"error_description": fmt.Sprintf("Deleting the account needs a sign-in within the last %s. Sign in again — a Mini Program calls wx.login and the WeChat grant; a web app sends an authorization request with prompt=login (or max_age=%d) — and retry with the new access token.",
				durationText(within), int(within/time.Second)),
		})
		return
	}
	err = p.audit.RecordWith(ctx, func(ctx context.Context) error {
		return p.cfg.Storage.DeleteUser(ctx, sess.Subject)
	}, storage.Event{Type: storage.EventUserDeleted, Subject: sess.Subject, ClientID: ar.GetClient().GetID(), IP: clientIP(r), Details: map[string]any{"by": "self"}})
	if errors.Is(err, storage.ErrNotFound) {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this access token no longer exists.")
		return
	}
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// durationText says d in English words: "10 minutes", "1 minute", "30
// seconds".
func durationText(d time.Duration) string {
	n, unit := int(d/time.Second), "second"
	if d%time.Minute == 0 {
		n, unit = int(d/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}
