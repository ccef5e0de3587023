package provider

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// handleUserinfo serves the OpenID Connect UserInfo endpoint (OIDC Core
// §5.3) for bearer access tokens (RFC 6750) granted the openid scope.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if err := parseForm(w, r); err != nil {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", "The request could not be parsed.")
		return
	}
	token, bad := bearerToken(r)
	if bad != "" {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", bad)
		return
	}
	if token == "" {
		// RFC 6750 §3.1: no error code when the request has no credentials.
		w.Header().Set("WWW-Authenticate", p.bearerChallenge("", "", ""))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "The request carries no access token."})
		return
	}
	tu, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if err != nil || tu != fosite.AccessToken {
		// fosite falls back to refresh tokens; userinfo takes access tokens only.
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if !ar.GetGrantedScopes().Has(ScopeOpenID) {
		p.insufficientScope(w, ScopeOpenID, "The access token was not granted the openid scope.")
		return
	}
	sess := ar.GetSession().(*Session)
	user, err := p.cfg.Storage.User(ctx, sess.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this access token no longer exists.")
		return
	}
	if err == nil && user.Disabled {
		// Disabling deletes the user's access tokens; this catches one
		// issued in the moment before.
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	claims, err := p.userClaims(ctx, user, ar.GetClient(), ar.GetGrantedScopes(), "")
	if err != nil {
		p.logError(ctx, r, standardError(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	claims["sub"] = user.Subject
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, claims)
}

// bearerError answers a protected-resource request per RFC 6750 §3.
func (p *Provider) bearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", p.bearerChallenge(code, desc, ""))
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// insufficientScope answers a request whose token lacks scope: 403
// insufficient_scope naming the scope it needs (RFC 6750 §3.1).
func (p *Provider) insufficientScope(w http.ResponseWriter, scope, desc string) {
	w.Header().Set("WWW-Authenticate", p.bearerChallenge("insufficient_scope", desc, scope))
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": desc, "scope": scope})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
