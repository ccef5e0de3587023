package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// Authentication is the outcome of a login: who signed in, and when.
type Authentication struct {
	// Subject is the user's sub; the user must exist in storage.
	Subject string
	// AuthTime is when the person actually authenticated (not when the
	// session was last used); it becomes auth_time.
	AuthTime time.Time
	// AMR lists the authentication methods used (RFC 8176 values, or
	// wxoidc's own such as "wechat").
	AMR []string
}

// Authenticator is the authorization endpoint's login step.
//
// Authenticate is called with a request that fosite has validated (client,
// redirect URI, PKCE, scopes). It returns who is signing in when the
// browser already has a login that satisfies the request (prompt,
// max_age). Otherwise it writes a response of its own — a login page, a
// redirect to WeChat — and returns nil, nil; once the person has logged in
// it brings the browser back to the authorization endpoint with the
// parameters of [AuthorizeParams], or calls [Provider.FinishAuthorization].
//
// An error is sent to the client as an authorization error response; use
// fosite's errors (fosite.ErrLoginRequired for prompt=none without a login,
// fosite.ErrAccessDenied when the person refused).
type Authenticator interface {
	Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*Authentication, error)
}

// LogoutAuthenticator is implemented by Authenticators that keep a login
// session; the logout endpoint ends it.
type LogoutAuthenticator interface {
	EndSession(w http.ResponseWriter, r *http.Request) error
}

// AuthorizeParams returns the parameters that re-create ar at the
// authorization endpoint. A pushed request (RFC 9126) is consumed on first
// use, so a login step that leaves and comes back must keep these instead
// of the request_uri.
func AuthorizeParams(ar fosite.AuthorizeRequester) url.Values {
	v := url.Values{}
	for k, vs := range ar.GetRequestForm() {
		if k == "request_uri" {
			continue
		}
		v[k] = append([]string(nil), vs...)
	}
	v.Set("client_id", ar.GetClient().GetID())
	return v
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.writeAuthorizeError(ctx, w, r, fosite.NewAuthorizeRequest(), err)
		return
	}
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.writeAuthorizeError(ctx, w, r, ar, err)
		return
	}
	if p.cfg.Authenticator == nil {
		p.writeAuthorizeError(ctx, w, r, ar, fosite.ErrTemporarilyUnavailable.WithHint(
			"No login method is configured on this provider, so it cannot sign anyone in through the authorization endpoint."))
		return
	}
	auth, err := p.cfg.Authenticator.Authenticate(w, r, ar)
	if err != nil {
		p.writeAuthorizeError(ctx, w, r, ar, err)
		return
	}
	if auth == nil {
		return // the login step took over the response
	}
	p.FinishAuthorization(w, r, ar, auth)
}

// FinishAuthorization completes the authorization request ar for a person
// who has logged in: it grants the requested scopes the client may have,
// records the login in the session and redirects back to the client with
// the code (and iss, RFC 9207).
func (p *Provider) FinishAuthorization(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, auth *Authentication) {
	ctx := r.Context()
	sess, err := p.authorizeSession(ctx, ar, auth)
	if err != nil {
		p.writeAuthorizeError(ctx, w, r, ar, err)
		return
	}
	resp, err := p.oauth2.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.writeAuthorizeError(ctx, w, r, ar, err)
		return
	}
	resp.AddParameter("iss", p.cfg.Issuer)
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// authorizeSession grants scopes and builds the session of an authorization.
func (p *Provider) authorizeSession(ctx context.Context, ar fosite.AuthorizeRequester, auth *Authentication) (*Session, error) {
	user, err := p.cfg.Storage.User(ctx, auth.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrAccessDenied.WithHint("The signed-in user is unknown to the provider.")
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	client := ar.GetClient()
	// fosite has checked every requested scope against the client's
	// registration; what the client may ask for, it gets.
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	sess := newUserSession(p.cfg.Issuer, client, user.Subject, auth.AuthTime, ar.GetRequestedAt(), idTokenAlg(client))
	sess.Claims.AuthenticationMethodsReferences = auth.AMR
	claims, err := p.userClaims(ctx, user, client, ar.GetGrantedScopes(), "")
	if err != nil {
		return nil, err
	}
	sess.setUserClaims(claims)
	return sess, nil
}

// idTokenAlg is the client's registered ID-token alg, or RS256 (OpenID
// Connect Registration §2).
func idTokenAlg(c fosite.Client) string {
	if sc, ok := c.(*storage.Client); ok && sc.IDTokenSignedResponseAlg != "" {
		return sc.IDTokenSignedResponseAlg
	}
	return "RS256"
}

// writeAuthorizeError answers a failed authorization request: with a
// redirect to the client (carrying error, state and iss, RFC 9207) when the
// redirect URI is known to be the client's, and with a JSON error otherwise
// — RFC 6749 §4.1.2.1 forbids redirecting to an unverified URI.
func (p *Provider) writeAuthorizeError(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := standardError(err)
	p.logError(ctx, r, rfc)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if ar == nil || !ar.IsRedirectURIValid() {
		p.oauth2.WriteAccessError(ctx, w, nil, rfc)
		return
	}
	params := rfc.WithExposeDebug(p.cfg.Dev).ToValues()
	if st := ar.GetState(); st != "" {
		params.Set("state", st)
	}
	params.Set("iss", p.cfg.Issuer)
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		h.Set("Content-Type", "text/html;charset=UTF-8")
		fosite.WriteAuthorizeFormPostResponse(u.String(), params, fosite.DefaultFormPostTemplate, w)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	h.Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}
