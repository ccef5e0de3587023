package provider

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

// introspection is an RFC 7662 §2.2 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
}

// handleIntrospect serves token introspection (RFC 7662). The caller must
// authenticate as a confidential client (fosite would also accept any
// bearer token). A client sees only tokens issued to it or naming it in
// their audience; for every other token, as for unknown, expired or revoked
// ones, the answer is {"active": false}.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidRequest.WithHint("Introspection requires POST."))
		return
	}
	if err := parseForm(w, r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if _, err := requestClientID(r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidClient.WithHint("Introspection requires client authentication, not a bearer token."))
		return
	}
	caller, err := p.oauth2.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if caller.IsPublic() {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidClient.WithHint("Public clients may not introspect tokens."))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidRequest.WithHint("The 'token' parameter is missing."))
		return
	}
	out := introspection{}
	tu, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), newSession())
	if err == nil && visibleTo(ar, caller.GetID()) {
		sess := ar.GetSession().(*Session)
		out = introspection{
			Active:   true,
			Scope:    strings.Join(ar.GetGrantedScopes(), " "),
			ClientID: ar.GetClient().GetID(),
			Sub:      sess.Subject,
			Iat:      ar.GetRequestedAt().Unix(),
			Aud:      ar.GetGrantedAudience(),
			Iss:      p.cfg.Issuer,
		}
		if tu == fosite.AccessToken {
			out.TokenType = "Bearer"
			out.Exp = sess.GetExpiresAt(fosite.AccessToken).Unix()
		} else {
			out.TokenType = "refresh_token"
			if e := sess.GetExpiresAt(fosite.RefreshToken); !e.IsZero() {
				out.Exp = e.Unix()
			}
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// visibleTo reports whether a client may introspect the token of ar.
func visibleTo(ar fosite.Requester, clientID string) bool {
	return ar.GetClient().GetID() == clientID || ar.GetGrantedAudience().Has(clientID)
}
