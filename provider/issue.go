package provider

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	fstorage "github.com/ory/fosite/storage"

	"github.com/wxoidc/wxoidc/storage"
)

// tokenIssuer issues the tokens of wxoidc's own grants (the WeChat grant,
// the device grant): an access token, a refresh token when offline_access
// was granted and the client may refresh, and an ID token when openid was
// granted.
type tokenIssuer struct {
	p        *Provider
	access   oauth2.AccessTokenStrategy
	refresh  oauth2.RefreshTokenStrategy
	idTokens *openid.IDTokenHandleHelper
}

// issue writes the tokens of ar to resp. The token rows, and whatever
// inTx writes, commit in one transaction.
func (t *tokenIssuer) issue(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder, grant fosite.GrantType, inTx func(ctx context.Context) error) (err error) {
	cfg := t.p.fconf
	client := ar.GetClient()
	at, atSig, err := t.access.GenerateAccessToken(ctx, ar)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	var rt, rtSig string
	if ar.GetGrantedScopes().Has(ScopeOfflineAccess) && client.GetGrantTypes().Has("refresh_token") {
		if rt, rtSig, err = t.refresh.GenerateRefreshToken(ctx, ar); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}

	store := t.p.cfg.Storage
	ctx, err = fstorage.MaybeBeginTx(ctx, store)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	defer func() {
		if err != nil {
			// The failure that made us roll back is the one to report; a
			// rollback on a connection that already broke fails too.
			if rbErr := fstorage.MaybeRollbackTx(ctx, store); rbErr != nil {
				t.p.log.WarnContext(ctx, "rollback", "error", rbErr)
			}
		}
	}()
	if inTx != nil {
		if err = inTx(ctx); err != nil {
			return issueError(err)
		}
	}
	// One sanitized copy for both rows: the store encodes what it is
	// given and keeps nothing of it.
	stored := ar.Sanitize(nil)
	if err = store.CreateAccessTokenSession(ctx, atSig, stored); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if rtSig != "" {
		if err = store.CreateRefreshTokenSession(ctx, rtSig, atSig, stored); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}
	if err = fstorage.MaybeCommitTx(ctx, store); err != nil {
		return issueError(err)
	}

	lifespan := fosite.GetEffectiveLifespan(client, grant, fosite.AccessToken, cfg.GetAccessTokenLifespan(ctx))
	resp.SetAccessToken(at)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(lifespan)
	resp.SetScopes(ar.GetGrantedScopes())
	if rt != "" {
		resp.SetExtra("refresh_token", rt)
	}
	if ar.GetGrantedScopes().Has(ScopeOpenID) {
		sess := ar.GetSession().(*Session)
		sess.Claims.AccessTokenHash = t.idTokens.GetAccessTokenHash(ctx, ar, resp)
		idLifespan := fosite.GetEffectiveLifespan(client, grant, fosite.IDToken, cfg.GetIDTokenLifespan(ctx))
		if err = t.idTokens.IssueExplicitIDToken(ctx, idLifespan, ar, resp); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}
	return nil
}

// issueError is the answer to a failed write of issue: a login that
// storage.UserStore.RecordLogin refused (the user was disabled meanwhile)
// is invalid_grant; anything else, server_error.
func issueError(err error) error {
	if errors.Is(err, storage.ErrUserDisabled) {
		return errDisabled.WithWrap(err)
	}
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}
