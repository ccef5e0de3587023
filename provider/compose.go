package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
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
// Connect, PAR, revocation and introspection, the WeChat grant and the
// device grant (RFC 8628). No implicit, hybrid or password grant.
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
		GlobalSecret:          keys.DeriveKey(c.Secret, keys.PurposeFositeHMAC, 32),
		// Refresh tokens only for offline_access (OIDC Core §11).
		RefreshTokenScopes:             []string{ScopeOfflineAccess},
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     c.Dev,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		// Audiences are compared as whole strings: fosite's default lets
		// https://api.example grant https://api.example/anything.
		AudienceMatchingStrategy:        fosite.ExactAudienceMatchingStrategy,
		RedirectSecureChecker:           fosite.IsRedirectURISecureStrict,
		ClientSecretsHasher:             NewSecretHasher(c.Secret),
		JWTScopeClaimKey:                jwt.JWTScopeFieldString,
		PushedAuthorizeContextLifespan:  5 * time.Minute,
		PushedAuthorizeRequestURIPrefix: parRequestURIPrefix,
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
		core = &jwtAccessStrategy{now: c.Now, DefaultJWTStrategy: &oauth2.DefaultJWTStrategy{
			Signer:          &signer{keys: c.Keys, alg: c.AccessTokenAlg},
			HMACSHAStrategy: hmacStrategy,
			Config:          fc,
		}}
	}
	if c.RefreshReuseGrace > 0 {
		core = capturingStrategy{core}
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: idTokenSigner{p.idSigner}, Config: fc},
		Signer:                     p.idSigner,
	}
	sealer, err := keys.NewSealer(c.Secret, keys.PurposeWeChatSessionKeys)
	if err != nil {
		return err
	}
	p.sessionKeys = sealer
	tokens := &tokenIssuer{
		p: p, access: core, refresh: core,
		idTokens: &openid.IDTokenHandleHelper{IDTokenStrategy: strategy.OpenIDConnectTokenStrategy},
	}
	grant := &wechatGrant{p: p, tokens: tokens, sealer: sealer}
	device := &deviceGrant{p: p, tokens: tokens}
	p.core = core
	if p.graceSealer, err = newGraceSealer(c.Secret); err != nil {
		return err
	}
	p.oauth2 = compose.Compose(fc, fositeStore{Storage: c.Storage, grace: c.RefreshReuseGrace, sealer: p.graceSealer, now: c.Now}, strategy,
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
		func(fosite.Configurator, any, any) any { return device },
	).(*fosite.Fosite)
	for i, h := range fc.TokenEndpointHandlers {
		fc.TokenEndpointHandlers[i] = handledOnly{h}
	}
	fc.ClientAuthenticationStrategy = p.authenticateClient
	return nil
}

// handledOnly asks a token endpoint handler whether it handles a request
// before it lets it populate the response. fosite's NewAccessResponse
// calls every handler's PopulateTokenEndpointResponse, and each of
// fosite's that does not handle the grant answers
// errorsx.WithStack(ErrUnknownRequest): a stack trace per handler and
// token request (five of them for the WeChat grant, some 165,000
// instructions). Every handler's PopulateTokenEndpointResponse begins
// with the same CanHandleTokenEndpointRequest check (PKCE's does
// nothing), so answering plain ErrUnknownRequest here changes nothing
// but the cost: NewAccessResponse skips either.
type handledOnly struct{ fosite.TokenEndpointHandler }

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler.
func (h handledOnly) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, ar, resp)
}

// fositeStore is the storage fosite's handlers see: c.Storage, except that
// a refresh whose access token was narrowed to fewer scopes stores its new
// refresh token with the whole grant's scope, which RFC 6749 §6 keeps for
// the refresh token.
type fositeStore struct {
	storage.Storage
	// grace is the refresh-token reuse grace (0: off); sealer opens the
	// answers kept for it.
	grace  time.Duration
	sealer *keys.Sealer
	now    func() time.Time // the provider's clock; never nil
}

var _ fstorage.Transactional = fositeStore{}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	if c, ok := ctx.Value(graceKey{}).(*graceCapture); ok && s.grace > 0 && c.refresh != "" {
		if err := s.keepAnswer(ctx, c, signature, req); err != nil {
			return err
		}
	}
	if sess, ok := req.GetSession().(*Session); ok && sess.RefreshScope != nil {
		if r, ok := req.(*fosite.Request); ok {
			cp := *r
			cp.GrantedScope = slices.Clone(sess.RefreshScope)
			req = &cp
		}
	}
	return s.Storage.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated
// token presented again within the reuse grace is not reported inactive
// (which makes fosite revoke the grant) but as *withinGrace with the
// answer its first refresh got.
func (s fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.Storage.GetRefreshTokenSession(ctx, signature, session)
	if s.grace > 0 && req != nil && errors.Is(err, fosite.ErrInactiveToken) {
		if a, ok := graceAnswerFor(ctx, s.Storage, s.sealer, signature, s.now); ok {
			return req, &withinGrace{answer: a, clientID: req.GetClient().GetID()}
		}
	}
	return req, err
}

// BeginTX implements fosite's storage.Transactional when the backend does.
func (s fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	if t, ok := s.Storage.(fstorage.Transactional); ok {
		return t.BeginTX(ctx)
	}
	return ctx, nil
}

// Commit implements fosite's storage.Transactional.
func (s fositeStore) Commit(ctx context.Context) error {
	if t, ok := s.Storage.(fstorage.Transactional); ok {
		return t.Commit(ctx)
	}
	return nil
}

// Rollback implements fosite's storage.Transactional.
func (s fositeStore) Rollback(ctx context.Context) error {
	if t, ok := s.Storage.(fstorage.Transactional); ok {
		return t.Rollback(ctx)
	}
	return nil
}

// idTokenSigner signs ID tokens without fosite's non-standard rat claim
// (the session keeps RequestedAt, which fosite's max_age and prompt checks
// need).
type idTokenSigner struct{ *signer }

// Generate implements jwt.Signer.
func (s idTokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	delete(claims, "rat")
	return s.signer.Generate(ctx, claims, header)
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
	return &SecretHasher{key: keys.DeriveKey(systemSecret, keys.PurposeClientSecrets, 32)}
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
