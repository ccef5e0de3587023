package provider

import (
	"context"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// userClaims returns the claims the granted scopes release about user to
// client (SPEC §5). They go into the ID token and the userinfo response.
// openID is the user's openid for the client's WeChat app when the caller
// already knows it (the Mini Program grant), "" to look it up.
func (p *Provider) userClaims(ctx context.Context, user storage.User, client fosite.Client, granted fosite.Arguments, openID string) (map[string]any, error) {
	claims := map[string]any{}
	if granted.Has(ScopeProfile) {
		if user.Name != "" {
			claims["name"] = user.Name
		}
		if user.Picture != "" {
			claims["picture"] = user.Picture
		}
	}
	if granted.Has(ScopePhone) && user.PhoneNumber != "" {
		claims["phone_number"] = user.PhoneNumber
		claims["phone_number_verified"] = user.PhoneNumberVerified
	}
	if granted.Has(ScopeWeChat) {
		if user.UnionID != "" {
			claims["wechat_unionid"] = user.UnionID
		}
		if c, ok := client.(*storage.Client); ok && c.WeChatAppID != "" {
			if openID == "" {
				ids, err := p.cfg.Storage.Identities(ctx, user.Subject)
				if err != nil {
					return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
				}
				for _, id := range ids {
					if id.AppID == c.WeChatAppID {
						openID = id.OpenID
					}
				}
			}
			if openID != "" {
				claims["wechat_openid"] = openID
			}
		}
	}
	return claims, nil
}

// userClaimNames are the claims userClaims may set; setUserClaims replaces
// all of them, so a claim the user lost (a removed phone number) disappears.
var userClaimNames = []string{"name", "picture", "phone_number", "phone_number_verified", "wechat_unionid", "wechat_openid"}

// setUserClaims puts claims into the ID-token claims of s.
func (s *Session) setUserClaims(claims map[string]any) {
	if s.Claims.Extra == nil {
		s.Claims.Extra = map[string]any{}
	}
	for _, k := range userClaimNames {
		delete(s.Claims.Extra, k)
	}
	for k, v := range claims {
		s.Claims.Extra[k] = v
	}
}
