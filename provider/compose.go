package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fhmac "github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
)

// Compile-time checks that storage.Storage satisfies what the composed
// handlers type-assert at start-up (compose panics otherwise).
var (
	_ oauth2.CoreStorage                 = storage.Storage(nil)
	_ oauth2.TokenRevocationStorage      = storage.Storage(nil)
	_ openid.OpenIDConnectRequestStorage = storage.Storage(nil)
	_ pkce.PKCERequestStorage            = storage.Storage(nil)
	_ fosite.PARStorage                  = storage.Storage(nil)
)

// compose builds the fosite configuration and provider with an explicit
// list of handlers: code flow with PKCE, refresh, client credentials, OpenID
// Connect, PAR, revocation and introspection. No implicit, hybrid or
// password grant.
func (p *Provider) compose() error {
	c := p.cfg
	fc := &fosite.Config{
		IDTokenIssuer:         c.Issuer,
		AccessTokenIssuer:     c.Issuer,
		TokenURL:              p.url(pathToken),
		AccessTokenLifespan:   c.AccessTokenLifespan,
		RefreshTokenLifespan:  c.RefreshTokenLifespan,
		AuthorizeCodeLifespan: c.AuthorizeCodeLifespan,
		IDTokenLifespan:       c.IDTokenLifespan,
		GlobalSecret:          keys.DeriveKey(c.Secret, "fosite-hmac", 32),
		// Refresh tokens only for offline_access (OIDC Core §11).
		RefreshTokenScopes:              []string{ScopeOfflineAccess},
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		SendDebugMessagesToClients:      c.Dev,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		RedirectSecureChecker:           fosite.IsRedirectURISecureStrict,
		ClientSecretsHasher:             NewSecretHasher(c.Secret),
		JWTScopeClaimKey:                jwt.JWTScopeFieldString,
		PushedAuthorizeContextLifespan:  5 * time.Minute,
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		MinParameterEntropy:             fosite.MinParameterEntropy,
		// Set eagerly: fosite's getters would otherwise write these fields
		// lazily from concurrent requests. wxoidc clients are not OpenID
		// Connect "advanced" clients, so fosite never fetches request_uri
		// or client JWKS with them.
		JWKSFetcherStrategy: fosite.NewDefaultJWKSFetcherStrategy(),
	}
	if c.Dev {
		fc.RedirectSecureChecker = fosite.IsRedirectURISecure
	}
	p.fconf = fc

	hmacStrategy := oauth2.NewHMACSHAStrategyUnPrefixed(&fhmac.HMACStrategy{Config: fc}, fc)
	p.idSigner = &signer{keys: c.Keys}
	var core oauth2.CoreStrategy = hmacStrategy
	if c.AccessTokenFormat == AccessTokenJWT {
		core = &jwtAccessStrategy{&oauth2.DefaultJWTStrategy{
			Signer:          &signer{keys: c.Keys, alg: c.AccessTokenAlg},
			HMACSHAStrategy: hmacStrategy,
			Config:          fc,
		}}
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: p.idSigner, Config: fc},
		Signer:                     p.idSigner,
	}
	sealer, err := keys.NewSealer(c.Secret, "wechat-session-keys")
	if err != nil {
		return err
	}
	p.sessionKeys = sealer
	grant := &wechatGrant{
		p: p, access: core, refresh: core, sealer: sealer,
		idTokens: &openid.IDTokenHandleHelper{IDTokenStrategy: strategy.OpenIDConnectTokenStrategy},
	}
	p.oauth2 = compose.Compose(fc, c.Storage, strategy,
		// Order matters: OAuth 2.0 handlers before their OpenID Connect and
		// PKCE counterparts (fosite-notes §2.1).
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		func(fosite.Configurator, any, any) any { return grant },
	).(*fosite.Fosite)
	return nil
}

// SecretHasher is fosite's client-secret hasher for wxoidc: HMAC-SHA256
// under a key derived from the system secret. Client secrets are generated
// by the server with 256 bits of entropy, so a slow password hash would add
// no protection and would cap the token endpoint at a few dozen requests
// per second; the key keeps a leaked database from confirming a guessed
// secret offline.
type SecretHasher struct {
	key []byte
}

var _ fosite.Hasher = (*SecretHasher)(nil)

// NewSecretHasher returns the hasher keyed from the system secret.
func NewSecretHasher(systemSecret []byte) *SecretHasher {
	return &SecretHasher{key: keys.DeriveKey(systemSecret, "client-secrets", 32)}
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// Compare implements fosite.Hasher in constant time.
func (h *SecretHasher) Compare(ctx context.Context, hash, data []byte) error {
	want, _ := h.Hash(ctx, data)
	if len(hash) == 0 || !hmac.Equal(hash, want) {
		return errors.New("client secret does not match")
	}
	return nil
}
