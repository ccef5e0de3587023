package provider

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// grantTypes are the grant types the token endpoint accepts. fosite would
// answer an unknown one with invalid_request; RFC 6749 §5.2 says
// unsupported_grant_type.
var grantTypes = map[string]bool{
	"authorization_code": true,
	"refresh_token":      true,
	"client_credentials": true,
	GrantTypeWeChat:      true,
	GrantTypeDeviceCode:  true,
}

// GrantTypes lists the grant types clients can register, sorted.
func GrantTypes() []string {
	out := make([]string, 0, len(grantTypes))
	for g := range grantTypes {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	clientID, err := requestClientID(r)
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && !grantTypes[gt] {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrUnsupportedGrantType.WithHintf("The grant type '%s' is not supported.", gt))
		return
	}
	if r.PostForm.Get("grant_type") == GrantTypeDeviceCode {
		ctx = withRequestIP(ctx, clientIP(r)) // for the login event
	}
	if r.PostForm.Get("grant_type") == GrantTypeWeChat {
		ctx = withRequestIP(ctx, clientIP(r))
		now := p.cfg.Now()
		ok, wait := p.limits.allow(clientID, clientIP(r), now)
		if ok {
			ok, wait = p.clientQuota.allow(ctx, clientID, now)
		}
		if !ok {
			retryAfterHeader(w, wait)
			p.writeTokenError(ctx, w, r, nil, errRateLimited)
			return
		}
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		// The code is read twice (see storage.Prefetch): once is enough,
		// and its PKCE and OpenID Connect sessions come along.
		var pre *storage.Prefetch
		ctx, pre = storage.WithPrefetch(ctx)
		pre.SetAuthorizeCode(r.PostForm.Get("code"))
	case "refresh_token":
		ctx, _ = storage.WithPrefetch(ctx)
		if p.cfg.RefreshReuseGrace > 0 {
			ctx = p.withGraceCapture(ctx, r.PostForm.Get("refresh_token"))
		}
	}
	ar, err := p.oauth2.NewAccessRequest(ctx, r, newSession())
	if g := (*withinGrace)(nil); errors.As(err, &g) {
		if ar != nil && ar.GetClient() != nil && ar.GetClient().GetID() == g.clientID {
			writeGraceAnswer(w, g.answer)
			return
		}
		err = fosite.ErrInvalidGrant.WithHint("The refresh token was issued to another client.")
	}
	if err != nil {
		if ar != nil && ar.GetGrantTypes().ExactOne("client_credentials") && ar.GetClient() != nil && ar.GetClient().IsPublic() {
			err = fosite.ErrUnauthorizedClient.WithHint("Public clients may not use the client_credentials grant.")
		}
		p.writeTokenError(ctx, w, r, ar, err)
		return
	}
	if err := p.prepareAccess(ctx, ar); err != nil {
		p.writeTokenError(ctx, w, r, ar, err)
		return
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	refresh := p.cfg.RefreshReuseGrace > 0 && ar.GetGrantTypes().ExactOne("refresh_token")
	if err != nil {
		if refresh && graceCandidate(err) {
			// A concurrent refresh of the same token won the rotation.
			sig := p.core.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))
			if a, ok := graceAnswerFor(ctx, p.cfg.Storage, p.graceSealer, sig, p.cfg.Now); ok {
				writeGraceAnswer(w, a)
				return
			}
		}
		p.writeTokenError(ctx, w, r, ar, lostRace(ar, err))
		return
	}
	p.flushDeferred(ctx)
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
	p.tokenIssued(ctx, ar)
}

// flushDeferred makes the storage writes the request put off
// (storage.Prefetch.Flush: the delete of a code's PKCE session that the
// code's invalidation did not carry, the exchange having failed first)
// before the client gets its answer and can try again.
func (p *Provider) flushDeferred(ctx context.Context) {
	if err := storage.PrefetchFrom(ctx).Flush(context.WithoutCancel(ctx)); err != nil {
		p.log.WarnContext(ctx, "deferred storage write", "error", err)
	}
}

// lostRace turns the errors of a request that lost a race for a
// single-use credential into invalid_grant. fosite answers such a loser with
// server_error (a code whose conditional invalidation found it already
// used) or invalid_request "please retry" (a refresh token rotated by a
// concurrent request, on this replica or another); for the client, the
// credential it presented is simply no longer valid. The winner's tokens
// stay valid; a later presentation of the used credential triggers fosite's
// reuse detection and revokes the whole grant.
func lostRace(ar fosite.AccessRequester, err error) error {
	used := errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrInactiveToken) ||
		errors.Is(err, storage.ErrNotFound) || errors.Is(err, fosite.ErrSerializationFailure)
	if !used {
		return err
	}
	switch {
	case ar.GetGrantTypes().ExactOne("authorization_code"):
		return fosite.ErrInvalidGrant.WithWrap(err).WithHint("The authorization code was already used.")
	case ar.GetGrantTypes().ExactOne("refresh_token"):
		return fosite.ErrInvalidGrant.WithWrap(err).WithHint("The refresh token was already used.")
	}
	return err
}

// errRateLimited answers a request over wxoidc's own rate limit. RFC 6749
// has no code for it; temporarily_unavailable is the nearest, and the 429
// status with Retry-After says the rest (RFC 6585 §4).
var errRateLimited = &fosite.RFC6749Error{
	ErrorField:       fosite.ErrTemporarilyUnavailable.ErrorField,
	DescriptionField: "Too many requests: the rate limit of this grant was exceeded. Retry after the number of seconds in Retry-After.",
	CodeField:        http.StatusTooManyRequests,
}

// errTooManyRequests answers an authorization or PAR request over the
// per-address limit.
var errTooManyRequests = &fosite.RFC6749Error{
	ErrorField:       fosite.ErrTemporarilyUnavailable.ErrorField,
	DescriptionField: "Too many requests from this address. Retry after the number of seconds in Retry-After.",
	CodeField:        http.StatusTooManyRequests,
}

// prepareAccess runs between fosite's validation and token issuance: it
// grants what the grant type itself does not, and refreshes user claims so
// a refreshed ID token tells the truth about the user today.
func (p *Provider) prepareAccess(ctx context.Context, ar fosite.AccessRequester) error {
	sess := ar.GetSession().(*Session)
	client := ar.GetClient()
	switch {
	case ar.GetGrantTypes().ExactOne("client_credentials"):
		// No resource owner: the client is the subject (RFC 9068 §2.2).
		for _, s := range ar.GetRequestedScopes() {
			if s == ScopeOpenID || s == ScopeOfflineAccess {
				return fosite.ErrInvalidScope.WithHintf("The scope '%s' needs a user and cannot be granted to client_credentials.", s)
			}
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		sess.Subject = client.GetID()
		sess.ClientID = client.GetID()
		ar.SetID(newRequestID())
	case ar.GetGrantTypes().ExactOne("refresh_token"):
		if err := narrowScope(ar, sess); err != nil {
			return err
		}
		// The store may have read the user along with the refresh token.
		user, ok := storage.PrefetchFrom(ctx).User(sess.Subject)
		if !ok {
			var err error
			user, err = p.cfg.Storage.User(ctx, sess.Subject)
			if errors.Is(err, storage.ErrNotFound) {
				return fosite.ErrInvalidGrant.WithHint("The user of this refresh token no longer exists.")
			}
			if err != nil {
				return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
			}
		}
		if user.Disabled {
			return errDisabled
		}
		claims, err := p.userClaims(ctx, user, client, ar.GetGrantedScopes(), "")
		if err != nil {
			return err
		}
		sess.setUserClaims(claims)
	}
	return nil
}

// narrowScope honours the scope parameter of a refresh (RFC 6749 §6): the
// new access token gets the scopes asked for, which must all have been
// granted (invalid_scope otherwise); the new refresh token keeps the whole
// grant. fosite ignores the parameter and re-grants everything.
func narrowScope(ar fosite.AccessRequester, sess *Session) error {
	sess.RefreshScope = nil
	asked := strings.Fields(ar.GetRequestForm().Get("scope"))
	if len(asked) == 0 {
		return nil
	}
	full := ar.GetGrantedScopes()
	narrow := make(fosite.Arguments, 0, len(asked))
	for _, s := range asked {
		if !slices.Contains(full, s) {
			return fosite.ErrInvalidScope.WithHintf("The scope '%s' was not granted to this refresh token.", s)
		}
		if !slices.Contains(narrow, s) {
			narrow = append(narrow, s)
		}
	}
	if len(narrow) == len(full) {
		return nil
	}
	req, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected access request type")
	}
	sess.RefreshScope = slices.Clone(full)
	req.GrantedScope = narrow
	return nil
}

type requestIPKey struct{}

// withRequestIP returns ctx carrying the client's IP address, for the
// events a token request records.
func withRequestIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, requestIPKey{}, ip)
}

func requestIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(requestIPKey{}).(string)
	return ip
}

// RequestIP returns the address of the client of r (as the ops middleware
// rewrote it behind trusted proxies), for events.
func RequestIP(r *http.Request) string { return clientIP(r) }
