package provider

import (
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

// handleRevoke serves token revocation (RFC 7009): an unknown, expired or
// already revoked token is a success; revoking either token of a grant
// revokes the whole grant.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if _, err := requestClientID(r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidClient.WithHint("Revocation requires client authentication."))
		return
	}
	if r.PostForm.Get("token") == "" {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidRequest.WithHint("The 'token' parameter is missing."))
		return
	}
	err := p.oauth2.NewRevocationRequest(ctx, r)
	if err == nil {
		p.oauth2.WriteRevocationResponse(ctx, w, nil)
		return
	}
	rfc := standardError(err)
	p.logError(ctx, r, rfc)
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField && strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.cfg.Issuer+`"`)
	}
	p.oauth2.WriteRevocationResponse(ctx, w, rfc)
}
