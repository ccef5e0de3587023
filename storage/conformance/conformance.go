package conformance

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// NewStorage returns a fresh, empty backend for one subtest. The suite
// closes it when the subtest ends (through t.Cleanup); the factory only
// needs to clean up what it created besides the store (files, schemas).
type NewStorage = func(t *testing.T) storage.Storage

type testCase struct {
	name string
	run  func(t *testing.T, s storage.Storage)
}

// RunTests runs the contract tests against fresh stores from newStorage.
// Subtests run in parallel.
func RunTests(t *testing.T, newStorage NewStorage) {
	run(t, newStorage, append([]testCase{
		{"Ping", testPing},
		{"ErrNotFound", testErrNotFound},
		{"Clients", testClients},
		{"UpdateClient", testUpdateClient},
		{"ClientAssertionJWT", testClientAssertionJWT},
		{"AuthorizeCode", testAuthorizeCode},
		{"AccessToken", testAccessToken},
		{"RefreshTokenRotation", testRefreshTokenRotation},
		{"RevokeByRequestID", testRevokeByRequestID},
		{"PKCE", testPKCE},
		{"OpenIDConnectSession", testOpenIDConnectSession},
		{"CodeSessionsInWriteSet", testCodeSessionsInWriteSet},
		{"PAR", testPAR},
		{"Transactions", testTransactions},
		{"LinkIdentity", testLinkIdentity},
		{"LinkIdentityUnionIDAttach", testLinkIdentityUnionIDAttach},
		{"Users", testUsers},
		{"SigningKeys", testSigningKeys},
		{"SessionKeys", testSessionKeys},
		{"ServerToken", testServerToken},
		{"Leases", testLeases},
		{"TakeRate", testTakeRate},
		{"PrefetchUser", testPrefetchUser},
		{"DeleteExpired", testDeleteExpired},
		{"RefreshGrace", testRefreshGrace},
		{"Backchannel", testBackchannel},
		{"BackchannelUserPaths", testBackchannelUserPaths},
		{"BackchannelClaims", testBackchannelClaims},
		{"InitialAccessTokens", testInitialAccessTokens},
		{"RegisterClient", testRegisterClient},
		{"RegisterClientInTransaction", testRegisterClientInTransaction},
	}, slices.Concat(webLoginTests, deviceTests, pushTests, accountTests, statsTests)...))
}

func run(t *testing.T, newStorage NewStorage, tests []testCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStorage(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

// ms is a time at millisecond precision, which every backend keeps exactly.
func ms(d time.Duration) time.Time {
	return time.Now().Add(d).UTC().Truncate(time.Millisecond)
}

func createClient(t *testing.T, s storage.Storage, id string) *storage.Client {
	t.Helper()
	c := storage.Client{
		ID:                               id,
		SecretHash:                       []byte("secret-hash"),
		Name:                             "Test client " + id,
		RedirectURIs:                     []string{"https://rp.example/callback"},
		PostLogoutRedirectURIs:           []string{"https://rp.example/bye"},
		GrantTypes:                       []string{"authorization_code", "refresh_token"},
		ResponseTypes:                    []string{"code"},
		Scopes:                           []string{"openid", "offline_access", "phone"},
		Audience:                         []string{"https://api.example"},
		TokenEndpointAuthMethod:          storage.AuthMethodBasic,
		WeChatAppID:                      "wx-app",
		SkipConsent:                      true,
		JWKS:                             []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		RequestObjectSigningAlg:          "ES256",
		RequestURIs:                      []string{"https://rp.example/request.jwt"},
		BackchannelLogoutURI:             "https://rp.example/backchannel",
		BackchannelLogoutSessionRequired: true,
		CreatedAt:                        ms(-time.Hour),
		UpdatedAt:                        ms(-time.Hour),
	}
	require.NoError(t, s.CreateClient(t.Context(), c))
	return &c
}

// newRequest returns a request of the family requestID whose session sets
// every token type's expiry to exp (none if exp is zero).
func newRequest(client fosite.Client, requestID, subject string, exp time.Time) *fosite.Request {
	sess := &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{
			Subject:  subject,
			Issuer:   "https://op.example",
			Nonce:    "nonce-123456",
			AuthTime: ms(-time.Minute),
			Extra:    map[string]any{"unionid": "union-" + subject},
		},
		Headers:   &jwt.Headers{Extra: map[string]any{"typ": "JWT"}},
		ExpiresAt: map[fosite.TokenType]time.Time{},
		Username:  "user-" + subject,
		Subject:   subject,
	}
	if !exp.IsZero() {
		for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode, fosite.IDToken, fosite.PushedAuthorizeRequestContext} {
			sess.ExpiresAt[tt] = exp
		}
	}
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       ms(-time.Second),
		Client:            client,
		RequestedScope:    fosite.Arguments{"openid", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid"},
		RequestedAudience: fosite.Arguments{"https://api.example"},
		GrantedAudience:   fosite.Arguments{"https://api.example"},
		Form:              url.Values{"redirect_uri": {"https://rp.example/callback"}, "foo": {"bar"}},
		Session:           sess,
	}
}

// checkRequest asserts that got is want, rebuilt from storage, with its
// session unmarshalled into proto.
func checkRequest(t *testing.T, want *fosite.Request, got fosite.Requester, proto *openid.DefaultSession) {
	t.Helper()
	require.NotNil(t, got)
	assert.Equal(t, want.ID, got.GetID())
	assert.True(t, want.RequestedAt.Equal(got.GetRequestedAt()), "requested_at: got %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	require.NotNil(t, got.GetClient(), "client not rehydrated")
	assert.Equal(t, want.Client.GetID(), got.GetClient().GetID())
	assert.Equal(t, want.Client.GetRedirectURIs(), got.GetClient().GetRedirectURIs())
	assert.Equal(t, want.RequestedScope, got.GetRequestedScopes())
	assert.Equal(t, want.GrantedScope, got.GetGrantedScopes())
	assert.Equal(t, want.RequestedAudience, got.GetRequestedAudience())
	assert.Equal(t, want.GrantedAudience, got.GetGrantedAudience())
	assert.Equal(t, want.Form, got.GetRequestForm())
	if proto == nil {
		return
	}
	assert.Same(t, proto, got.GetSession(), "session must be the prototype passed in")
	ws := want.Session.(*openid.DefaultSession)
	assert.Equal(t, ws.Subject, proto.Subject)
	assert.Equal(t, ws.Username, proto.Username)
	require.NotNil(t, proto.Claims)
	assert.Equal(t, ws.Claims.Subject, proto.Claims.Subject)
	assert.Equal(t, ws.Claims.Issuer, proto.Claims.Issuer)
	assert.Equal(t, ws.Claims.Nonce, proto.Claims.Nonce)
	assert.True(t, ws.Claims.AuthTime.Equal(proto.Claims.AuthTime))
	assert.Equal(t, ws.Claims.Extra, proto.Claims.Extra)
	require.NotNil(t, proto.Headers)
	assert.Equal(t, ws.Headers.Extra, proto.Headers.Extra)
	for tt, exp := range ws.ExpiresAt {
		assert.True(t, exp.Equal(proto.ExpiresAt[tt]), "expires_at[%s]: got %v, want %v", tt, proto.ExpiresAt[tt], exp)
	}
}

func requireNotFound(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, storage.ErrNotFound)
	assert.ErrorIs(t, err, fosite.ErrNotFound)
}

func testPing(t *testing.T, s storage.Storage) {
	require.NoError(t, s.Ping(t.Context()))
}

func testErrNotFound(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetClient(ctx, "nope")
	requireNotFound(t, err)
	_, err = s.Client(ctx, "nope")
	requireNotFound(t, err)
	_, err = s.GetAuthorizeCodeSession(ctx, "nope", new(openid.DefaultSession))
	requireNotFound(t, err)
	_, err = s.GetAccessTokenSession(ctx, "nope", new(openid.DefaultSession))
	requireNotFound(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "nope", new(openid.DefaultSession))
	requireNotFound(t, err)
	_, err = s.GetPKCERequestSession(ctx, "nope", new(openid.DefaultSession))
	requireNotFound(t, err)
	_, err = s.GetOpenIDConnectSession(ctx, "nope", fosite.NewAuthorizeRequest())
	requireNotFound(t, err)
	assert.ErrorIs(t, err, openid.ErrNoSessionFound)
	_, err = s.GetPARSession(ctx, "nope")
	requireNotFound(t, err)
	_, err = s.User(ctx, "nope")
	requireNotFound(t, err)
	_, err = s.Identity(ctx, "app", "nope")
	requireNotFound(t, err)
	_, err = s.SessionKey(ctx, "nope", "app")
	requireNotFound(t, err)
	_, err = s.ServerToken(ctx, "nope")
	requireNotFound(t, err)
	requireNotFound(t, s.DeleteClient(ctx, "nope"))
	requireNotFound(t, s.UpdateClient(ctx, "nope", func(c storage.Client) (storage.Client, error) { return c, nil }))
	requireNotFound(t, s.UpdateUser(ctx, "nope", func(u storage.User) (storage.User, error) { return u, nil }))
	ids, err := s.Identities(ctx, "nope")
	require.NoError(t, err)
	assert.Empty(t, ids)
}

func testDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	live := newRequest(c, "live", "alice", ms(time.Hour))
	dead := newRequest(c, "dead", "alice", ms(-time.Hour))
	// Without expiries in the session: refresh tokens never expire, the
	// rest are kept 30 days from their request time.
	old := newRequest(c, "old", "alice", time.Time{})
	old.RequestedAt = ms(-31 * 24 * time.Hour)
	recent := newRequest(c, "recent", "alice", time.Time{})

	for _, r := range []*fosite.Request{live, dead, old, recent} {
		require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code-"+r.ID, r))
		require.NoError(t, s.CreateAccessTokenSession(ctx, "at-"+r.ID, r))
		require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-"+r.ID, "at-"+r.ID, r))
		require.NoError(t, s.CreatePKCERequestSession(ctx, "pkce-"+r.ID, r))
		require.NoError(t, s.CreateOpenIDConnectSession(ctx, "oidc-"+r.ID, r))
		ar := newAuthorizeRequest(t, c, r.ID, time.Time{})
		ar.Request = *r
		require.NoError(t, s.CreatePARSession(ctx, "par-"+r.ID, ar))
	}
	// A used refresh token is kept until it expires (reuse detection).
	require.NoError(t, s.RotateRefreshToken(ctx, "live", "rt-live"))
	require.NoError(t, s.SetClientAssertionJWT(ctx, "jti-dead", ms(-time.Minute)))
	require.NoError(t, s.SetClientAssertionJWT(ctx, "jti-live", ms(time.Hour)))
	ok, err := s.AcquireLease(ctx, "lease-dead", "a", time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AcquireLease(ctx, "lease-live", "a", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	n, err := s.DeleteExpired(ctx, ms(30*time.Minute))
	require.NoError(t, err)
	// dead: 6 artifacts; old: 5 (its refresh token never expires); one
	// JTI; one lease.
	assert.Equal(t, int64(6+5+1+1), n)

	for _, id := range []string{"dead", "old"} {
		_, err = s.GetAuthorizeCodeSession(ctx, "code-"+id, nil)
		requireNotFound(t, err)
		_, err = s.GetAccessTokenSession(ctx, "at-"+id, nil)
		requireNotFound(t, err)
		_, err = s.GetPKCERequestSession(ctx, "pkce-"+id, nil)
		requireNotFound(t, err)
		_, err = s.GetOpenIDConnectSession(ctx, "oidc-"+id, fosite.NewAuthorizeRequest())
		requireNotFound(t, err)
		_, err = s.GetPARSession(ctx, "par-"+id)
		requireNotFound(t, err)
	}
	_, err = s.GetRefreshTokenSession(ctx, "rt-dead", nil)
	requireNotFound(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-old", nil)
	require.NoError(t, err, "a refresh token without expiry never expires")

	for _, id := range []string{"live", "recent"} {
		_, err = s.GetAuthorizeCodeSession(ctx, "code-"+id, nil)
		require.NoError(t, err)
		_, err = s.GetPKCERequestSession(ctx, "pkce-"+id, nil)
		require.NoError(t, err)
		_, err = s.GetOpenIDConnectSession(ctx, "oidc-"+id, fosite.NewAuthorizeRequest())
		require.NoError(t, err)
	}
	_, err = s.GetAccessTokenSession(ctx, "at-recent", nil)
	require.NoError(t, err)
	_, err = s.GetPARSession(ctx, "par-recent")
	require.NoError(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-live", nil)
	require.ErrorIs(t, err, fosite.ErrInactiveToken, "a used refresh token is kept until it expires")
	_, err = s.GetRefreshTokenSession(ctx, "rt-recent", nil)
	require.NoError(t, err)

	assert.ErrorIs(t, s.ClientAssertionJWTValid(ctx, "jti-live"), fosite.ErrJTIKnown)
	ok, err = s.AcquireLease(ctx, "lease-live", "b", time.Hour)
	require.NoError(t, err)
	assert.False(t, ok)

	n, err = s.DeleteExpired(ctx, ms(30*time.Minute))
	require.NoError(t, err)
	assert.Zero(t, n)
}
