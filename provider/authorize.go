package provider

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
	fstorage "github.com/ory/fosite/storage"

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
	// SID is the public id of the browser session the person signed in
	// with (SessionSID of the session's ID); it becomes the ID token's sid
	// and is what back-channel logout names. Empty without a session.
	SID string
	// SessionExpiresAt is when that browser session ends.
	SessionExpiresAt time.Time
	// User, if set, is the user of Subject as the Authenticator read it
	// while handling this request; the provider then does not read it
	// again. Nil means the provider reads it.
	User *storage.User
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
	if ok, wait := p.authorizeLimits.Allow(r, p.cfg.Now()); !ok {
		retryAfterHeader(w, wait)
		p.writeAuthorizeError(ctx, w, r, nil, errTooManyRequests)
		return
	}
	if err := parseAuthorizeForm(w, r, false); err != nil {
		p.writeAuthorizeError(ctx, w, r, fosite.NewAuthorizeRequest(), err)
		return
	}
	if err := p.expandRequestObject(ctx, r, false); err != nil {
		p.writeAuthorizeError(ctx, w, r, p.errorTarget(ctx, r), err)
		return
	}
	// A request object's claims are bounded like parameters.
	if err := normalizeAuthorizeForm(r.Form, false); err != nil {
		p.writeAuthorizeError(ctx, w, r, p.errorTarget(ctx, r), err)
		return
	}
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if ar != nil && ar.IsRedirectURIValid() && !redirectRegistered(ar) {
		p.writeAuthorizeError(ctx, w, r, nil, errLoopbackPort)
		return
	}
	if err == nil {
		ar.SetID(newRequestID())
		// Everything that would fail after the login fails now, before
		// the person is asked to sign in.
		err = checkAuthorizeRequest(ar)
	}
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

// errLoopbackPort refuses a loopback redirect URI whose port differs from
// the registered one for a confidential client.
var errLoopbackPort = fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls (only public native clients may vary the port of a loopback redirect URI).")

// redirectRegistered reports whether ar may use its redirect URI. fosite
// lets a loopback redirect URI vary its port for every client; RFC 8252
// §7.3 allows that for native apps, which are public clients, only, so a
// confidential client's redirect URI must match a registered one exactly.
func redirectRegistered(ar fosite.AuthorizeRequester) bool {
	c := ar.GetClient()
	raw := ar.GetRequestForm().Get("redirect_uri")
	return c.IsPublic() || raw == "" || slices.Contains(c.GetRedirectURIs(), raw)
}

// checkAuthorizeRequest refuses what fosite would only refuse after the
// login step, or not at all: a response_type other than exactly "code"
// (fosite compares it without case), PKCE that is missing for a public
// client or is not S256 of a 43-character base64url challenge (RFC 7636
// §4.2), and malformed prompt or max_age (OpenID Connect Core §3.1.2.1).
func checkAuthorizeRequest(ar fosite.AuthorizeRequester) error {
	f := ar.GetRequestForm()
	if rt := f.Get("response_type"); rt != "code" {
		return fosite.ErrUnsupportedResponseType.WithHintf("The response_type '%s' is not supported; use 'code'.", rt)
	}
	challenge, method := f.Get("code_challenge"), f.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method was given without code_challenge.")
	case challenge == "" && ar.GetClient().IsPublic():
		return fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: send code_challenge and code_challenge_method=S256.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256.")
	case challenge != "" && !isS256Challenge(challenge):
		return fosite.ErrInvalidRequest.WithHint("The code_challenge must be the 43-character base64url encoding of a SHA-256 hash.")
	}
	if prompt := f.Get("prompt"); prompt != "" {
		vals := strings.Fields(prompt)
		for _, v := range vals {
			switch v {
			case "none", "login", "consent", "select_account":
			default:
				return fosite.ErrInvalidRequest.WithHintf("The prompt value '%s' is not supported.", v)
			}
		}
		if slices.Contains(vals, "none") && len(vals) > 1 {
			return fosite.ErrInvalidRequest.WithHint("prompt=none must not be combined with other values.")
		}
	}
	if ma := f.Get("max_age"); ma != "" {
		if n, err := strconv.ParseInt(ma, 10, 64); err != nil || n < 0 {
			return fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative number of seconds.")
		}
	}
	return nil
}

// isS256Challenge reports whether s is 43 base64url characters, the
// encoding of 32 bytes.
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// errorTarget is where an authorization error found before fosite parsed
// the request (a bad request object) goes: to the client's redirect URI
// when the outer request names the client and one of its registered
// redirect URIs exactly, else nowhere (a JSON error).
func (p *Provider) errorTarget(ctx context.Context, r *http.Request) fosite.AuthorizeRequester {
	ar := fosite.NewAuthorizeRequest()
	ar.Form = r.Form
	ar.State = r.Form.Get("state")
	c, err := p.cfg.Storage.GetClient(ctx, r.Form.Get("client_id"))
	if err != nil {
		return ar
	}
	ar.Client = c
	raw := r.Form.Get("redirect_uri")
	if raw == "" || !slices.Contains(c.GetRedirectURIs(), raw) {
		return ar
	}
	if u, err := url.Parse(raw); err == nil {
		ar.RedirectURI = u
	}
	ar.ResponseMode = fosite.ResponseModeQuery
	if r.Form.Get("response_mode") == string(fosite.ResponseModeFormPost) {
		ar.ResponseMode = fosite.ResponseModeFormPost
	}
	return ar
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
	resp, err := p.newAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.writeAuthorizeError(ctx, w, r, ar, err)
		return
	}
	resp.AddParameter("iss", p.cfg.Issuer)
	if c, ok := ar.GetClient().(*storage.Client); ok {
		p.recordSessionClient(ctx, c, auth)
	}
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// newAuthorizeResponse is fosite's NewAuthorizeResponse in one write
// transaction: the authorization code and its PKCE and OpenID Connect
// sessions commit together, in one round trip where the backend batches.
func (p *Provider) newAuthorizeResponse(ctx context.Context, ar fosite.AuthorizeRequester, sess *Session) (resp fosite.AuthorizeResponder, err error) {
	store := p.cfg.Storage
	txCtx, err := fstorage.MaybeBeginTx(ctx, store)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	resp, err = p.oauth2.NewAuthorizeResponse(txCtx, ar, sess)
	if err != nil {
		if rbErr := fstorage.MaybeRollbackTx(txCtx, store); rbErr != nil {
			p.log.WarnContext(ctx, "rollback", "error", rbErr)
		}
		return nil, err
	}
	if err := fstorage.MaybeCommitTx(txCtx, store); err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return resp, nil
}

// authorizeSession grants scopes and builds the session of an authorization.
func (p *Provider) authorizeSession(ctx context.Context, ar fosite.AuthorizeRequester, auth *Authentication) (*Session, error) {
	var user storage.User
	if auth.User != nil && auth.User.Subject == auth.Subject {
		user = *auth.User
	} else {
		var err error
		user, err = p.cfg.Storage.User(ctx, auth.Subject)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fosite.ErrAccessDenied.WithHint("The signed-in user is unknown to the provider.")
		}
		if err != nil {
			return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
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
	if auth.SID != "" {
		sess.Claims.Add("sid", auth.SID)
	}
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
// redirect to the client (WriteErrorRedirect) when the redirect URI is known
// to be the client's, and otherwise, since RFC 6749 §4.1.2.1 forbids
// redirecting to an unverified URI, with a page for the person (or JSON
// for a client that asks for it; see writeAuthorizeErrorPage).
func (p *Provider) writeAuthorizeError(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := standardError(err)
	p.logError(ctx, r, rfc)
	if ar == nil || !ar.IsRedirectURIValid() {
		p.writeAuthorizeErrorPage(w, r, rfc)
		return
	}
	WriteErrorRedirect(w, ErrorRedirect{
		RedirectURI: ar.GetRedirectURI(), ResponseMode: ar.GetResponseMode(), State: ar.GetState(), Issuer: p.cfg.Issuer,
	}, rfc, p.cfg.Dev)
}
