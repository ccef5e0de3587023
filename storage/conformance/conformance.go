package conformance

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositestorage "github.com/ory/fosite/storage"
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
	}, webLoginTests...))
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
		ID:                      id,
		SecretHash:              []byte("secret-hash"),
		Name:                    "Test client " + id,
		RedirectURIs:            []string{"https://rp.example/callback"},
		PostLogoutRedirectURIs:  []string{"https://rp.example/bye"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "offline_access", "phone"},
		Audience:                []string{"https://api.example"},
		TokenEndpointAuthMethod: storage.AuthMethodBasic,
		WeChatAppID:             "wx-app",
		SkipConsent:             true,
		CreatedAt:               ms(-time.Hour),
		UpdatedAt:               ms(-time.Hour),
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

func testClients(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := createClient(t, s, "client-b")
	createClient(t, s, "client-a")

	got, err := s.Client(ctx, "client-b")
	require.NoError(t, err)
	assertClient(t, *want, got)

	fc, err := s.GetClient(ctx, "client-b")
	require.NoError(t, err)
	sc, ok := fc.(*storage.Client)
	require.True(t, ok, "GetClient returns %T, want *storage.Client", fc)
	assertClient(t, *want, *sc)
	assert.False(t, fc.IsPublic())

	// A returned client is a copy.
	got.RedirectURIs[0] = "https://evil.example"
	again, err := s.Client(ctx, "client-b")
	require.NoError(t, err)
	assert.Equal(t, want.RedirectURIs, again.RedirectURIs)

	err = s.CreateClient(ctx, storage.Client{ID: "client-a"})
	assert.ErrorIs(t, err, storage.ErrAlreadyExists)

	list, err := s.ListClients(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "client-a", list[0].ID)
	assert.Equal(t, "client-b", list[1].ID)
	assertClient(t, *want, list[1])

	// A public client with no optional fields round-trips too, with
	// defaults filled in.
	require.NoError(t, s.CreateClient(ctx, storage.Client{ID: "public", TokenEndpointAuthMethod: storage.AuthMethodNone}))
	pub, err := s.Client(ctx, "public")
	require.NoError(t, err)
	assert.True(t, pub.IsPublic())
	assert.Empty(t, pub.SecretHash)
	assert.False(t, pub.CreatedAt.IsZero(), "CreatedAt must be set")
	assert.False(t, pub.UpdatedAt.IsZero(), "UpdatedAt must be set")

	require.NoError(t, s.DeleteClient(ctx, "client-a"))
	_, err = s.Client(ctx, "client-a")
	requireNotFound(t, err)
	requireNotFound(t, s.DeleteClient(ctx, "client-a"))
}

func assertClient(t *testing.T, want, got storage.Client) {
	t.Helper()
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: got %v, want %v", got.CreatedAt, want.CreatedAt)
	assert.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: got %v, want %v", got.UpdatedAt, want.UpdatedAt)
	want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	assert.Equal(t, want, got)
}

func testUpdateClient(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	old := createClient(t, s, "c1")
	require.NoError(t, s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		assertClient(t, *old, c)
		c.Name = "renamed"
		c.Scopes = append(c.Scopes, "email")
		c.SecretHash = []byte("new-hash")
		return c, nil
	}))
	got, err := s.Client(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	assert.Equal(t, []string{"openid", "offline_access", "phone", "email"}, got.Scopes)
	assert.Equal(t, []byte("new-hash"), got.SecretHash)
	assert.True(t, old.CreatedAt.Equal(got.CreatedAt), "CreatedAt must not change")
	assert.True(t, got.UpdatedAt.After(old.UpdatedAt), "UpdatedAt must advance")

	errBoom := errors.New("boom")
	err = s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		c.Name = "lost"
		return c, errBoom
	})
	assert.ErrorIs(t, err, errBoom)
	err = s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
		c.ID = "other"
		return c, nil
	})
	assert.Error(t, err, "changing the ID must fail")
	got, err = s.Client(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	_, err = s.Client(ctx, "other")
	requireNotFound(t, err)
}

func testClientAssertionJWT(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.ClientAssertionJWTValid(ctx, "jti-1"))
	require.NoError(t, s.SetClientAssertionJWT(ctx, "jti-1", ms(time.Hour)))
	assert.ErrorIs(t, s.ClientAssertionJWTValid(ctx, "jti-1"), fosite.ErrJTIKnown)
	assert.ErrorIs(t, s.SetClientAssertionJWT(ctx, "jti-1", ms(2*time.Hour)), fosite.ErrJTIKnown)
	require.NoError(t, s.ClientAssertionJWTValid(ctx, "jti-2"))

	// An expired JTI is unknown again and may be recorded again.
	require.NoError(t, s.SetClientAssertionJWT(ctx, "jti-old", ms(-time.Minute)))
	require.NoError(t, s.ClientAssertionJWTValid(ctx, "jti-old"))
	require.NoError(t, s.SetClientAssertionJWT(ctx, "jti-old", ms(time.Hour)))
	assert.ErrorIs(t, s.ClientAssertionJWTValid(ctx, "jti-old"), fosite.ErrJTIKnown)

	// Long JTIs are fine.
	long := strings.Repeat("j", 1000)
	require.NoError(t, s.SetClientAssertionJWT(ctx, long, ms(time.Hour)))
	assert.ErrorIs(t, s.ClientAssertionJWTValid(ctx, long), fosite.ErrJTIKnown)
}

func testAuthorizeCode(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(10*time.Minute))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code-sig", req))
	assert.ErrorIs(t, s.CreateAuthorizeCodeSession(ctx, "code-sig", req), storage.ErrAlreadyExists)

	// Later changes to the caller's request do not reach storage.
	req.GrantScope("mutated")
	req.Session.(*openid.DefaultSession).Subject = "mallory"
	proto := new(openid.DefaultSession)
	got, err := s.GetAuthorizeCodeSession(ctx, "code-sig", proto)
	require.NoError(t, err)
	assert.Equal(t, fosite.Arguments{"openid"}, got.GetGrantedScopes())
	assert.Equal(t, "alice", proto.Subject)
	req.GrantedScope = fosite.Arguments{"openid"}
	req.Session.(*openid.DefaultSession).Subject = "alice"
	checkRequest(t, req, got, proto)
	// Neither do changes to what Get returned.
	got.GrantScope("mutated")
	proto = new(openid.DefaultSession)
	got, err = s.GetAuthorizeCodeSession(ctx, "code-sig", proto)
	require.NoError(t, err)
	checkRequest(t, req, got, proto)

	got, err = s.GetAuthorizeCodeSession(ctx, "code-sig", nil)
	require.NoError(t, err, "a nil session must work")
	checkRequest(t, req, got, nil)

	require.NoError(t, s.InvalidateAuthorizeCodeSession(ctx, "code-sig"))
	proto = new(openid.DefaultSession)
	got, err = s.GetAuthorizeCodeSession(ctx, "code-sig", proto)
	require.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode)
	require.NotNil(t, got, "an invalidated code must come back with its request")
	checkRequest(t, req, got, proto)

	assert.ErrorIs(t, s.InvalidateAuthorizeCodeSession(ctx, "code-sig"), fosite.ErrInvalidatedAuthorizeCode,
		"invalidating twice must fail")
	assert.Error(t, s.InvalidateAuthorizeCodeSession(ctx, "unknown"))
}

func testAccessToken(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(time.Hour))
	// JWT access-token signatures are long.
	sig := strings.Repeat("A", 342)
	require.NoError(t, s.CreateAccessTokenSession(ctx, sig, req))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "short", req))
	assert.ErrorIs(t, s.CreateAccessTokenSession(ctx, sig, req), storage.ErrAlreadyExists)

	proto := new(openid.DefaultSession)
	got, err := s.GetAccessTokenSession(ctx, sig, proto)
	require.NoError(t, err)
	checkRequest(t, req, got, proto)
	got, err = s.GetAccessTokenSession(ctx, sig, nil)
	require.NoError(t, err)
	checkRequest(t, req, got, nil)

	_, err = s.GetAccessTokenSession(ctx, strings.Repeat("A", 341), new(openid.DefaultSession))
	requireNotFound(t, err)

	require.NoError(t, s.DeleteAccessTokenSession(ctx, sig))
	_, err = s.GetAccessTokenSession(ctx, sig, new(openid.DefaultSession))
	requireNotFound(t, err)
	require.NoError(t, s.DeleteAccessTokenSession(ctx, sig), "deleting twice is not an error")
	_, err = s.GetAccessTokenSession(ctx, "short", new(openid.DefaultSession))
	require.NoError(t, err)
}

func testRefreshTokenRotation(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(time.Hour))
	other := newRequest(c, "req-2", "bob", ms(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", req))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-other", other))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-other", "at-other", other))
	assert.ErrorIs(t, s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", req), storage.ErrAlreadyExists)

	proto := new(openid.DefaultSession)
	got, err := s.GetRefreshTokenSession(ctx, "rt-1", proto)
	require.NoError(t, err)
	checkRequest(t, req, got, proto)

	require.NoError(t, s.RotateRefreshToken(ctx, "req-1", "rt-1"))

	proto = new(openid.DefaultSession)
	got, err = s.GetRefreshTokenSession(ctx, "rt-1", proto)
	require.ErrorIs(t, err, fosite.ErrInactiveToken)
	require.NotNil(t, got, "an inactive refresh token must come back with its request")
	checkRequest(t, req, got, proto)
	got, err = s.GetRefreshTokenSession(ctx, "rt-1", nil)
	require.ErrorIs(t, err, fosite.ErrInactiveToken)
	require.NotNil(t, got)

	_, err = s.GetAccessTokenSession(ctx, "at-1", nil)
	requireNotFound(t, err)

	err = s.RotateRefreshToken(ctx, "req-1", "rt-1")
	requireNotFound(t, err)
	requireNotFound(t, s.RotateRefreshToken(ctx, "req-1", "unknown"))

	// The new pair of the family works; the other family is untouched.
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-2", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-2", "at-2", req))
	_, err = s.GetRefreshTokenSession(ctx, "rt-2", nil)
	require.NoError(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-other", nil)
	require.NoError(t, err)
	_, err = s.GetAccessTokenSession(ctx, "at-other", nil)
	require.NoError(t, err)

	require.NoError(t, s.DeleteRefreshTokenSession(ctx, "rt-1"))
	_, err = s.GetRefreshTokenSession(ctx, "rt-1", nil)
	requireNotFound(t, err)
	require.NoError(t, s.DeleteRefreshTokenSession(ctx, "rt-1"), "deleting twice is not an error")
}

func testRevokeByRequestID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(time.Hour))
	other := newRequest(c, "req-2", "bob", ms(time.Hour))
	for i := range 3 {
		require.NoError(t, s.CreateAccessTokenSession(ctx, fmt.Sprint("at-", i), req))
		require.NoError(t, s.CreateRefreshTokenSession(ctx, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), req))
	}
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-other", other))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-other", "at-other", other))

	require.NoError(t, s.RevokeRefreshToken(ctx, "req-1"))
	require.NoError(t, s.RevokeAccessToken(ctx, "req-1"))
	for i := range 3 {
		got, err := s.GetRefreshTokenSession(ctx, fmt.Sprint("rt-", i), nil)
		assert.ErrorIs(t, err, fosite.ErrInactiveToken)
		assert.NotNil(t, got)
		_, err = s.GetAccessTokenSession(ctx, fmt.Sprint("at-", i), nil)
		requireNotFound(t, err)
	}
	_, err := s.GetRefreshTokenSession(ctx, "rt-other", nil)
	require.NoError(t, err)
	_, err = s.GetAccessTokenSession(ctx, "at-other", nil)
	require.NoError(t, err)

	// Idempotent.
	require.NoError(t, s.RevokeRefreshToken(ctx, "req-1"))
	require.NoError(t, s.RevokeAccessToken(ctx, "req-1"))
	require.NoError(t, s.RevokeRefreshToken(ctx, "unknown"))
	require.NoError(t, s.RevokeAccessToken(ctx, "unknown"))
}

func testPKCE(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(10*time.Minute))
	req.Form.Set("code_challenge", "abc")
	req.Form.Set("code_challenge_method", "S256")
	require.NoError(t, s.CreatePKCERequestSession(ctx, "code-sig", req))
	proto := new(openid.DefaultSession)
	got, err := s.GetPKCERequestSession(ctx, "code-sig", proto)
	require.NoError(t, err)
	checkRequest(t, req, got, proto)
	assert.Equal(t, "abc", got.GetRequestForm().Get("code_challenge"))

	require.NoError(t, s.DeletePKCERequestSession(ctx, "code-sig"))
	_, err = s.GetPKCERequestSession(ctx, "code-sig", nil)
	requireNotFound(t, err)
	require.NoError(t, s.DeletePKCERequestSession(ctx, "code-sig"))
}

func testOpenIDConnectSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(10*time.Minute))
	code := "raw-code." + strings.Repeat("x", 300)
	require.NoError(t, s.CreateOpenIDConnectSession(ctx, code, req))

	proto := new(openid.DefaultSession)
	ar := fosite.NewAuthorizeRequest()
	ar.Session = proto
	got, err := s.GetOpenIDConnectSession(ctx, code, ar)
	require.NoError(t, err)
	checkRequest(t, req, got, proto)

	_, err = s.GetOpenIDConnectSession(ctx, "raw-code.other", ar)
	requireNotFound(t, err)

	require.NoError(t, s.DeleteOpenIDConnectSession(ctx, code))
	_, err = s.GetOpenIDConnectSession(ctx, code, ar)
	requireNotFound(t, err)
	require.NoError(t, s.DeleteOpenIDConnectSession(ctx, code))
}

func newAuthorizeRequest(t *testing.T, c fosite.Client, id string, exp time.Time) *fosite.AuthorizeRequest {
	t.Helper()
	redirect, err := url.Parse("https://rp.example/callback?x=1")
	require.NoError(t, err)
	ar := fosite.NewAuthorizeRequest()
	ar.Request = *newRequest(c, id, "", exp)
	ar.ResponseTypes = fosite.Arguments{"code"}
	ar.RedirectURI = redirect
	ar.State = "state-12345678"
	ar.ResponseMode = fosite.ResponseModeQuery
	ar.DefaultResponseMode = fosite.ResponseModeQuery
	return ar
}

func testPAR(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := createClient(t, s, "c1")
	const uri = "urn:ietf:params:oauth:request_uri:abc"
	ar := newAuthorizeRequest(t, c, "par-1", ms(time.Minute))
	require.NoError(t, s.CreatePARSession(ctx, uri, ar))

	got, err := s.GetPARSession(ctx, uri)
	require.NoError(t, err)
	checkRequest(t, &ar.Request, got, nil)
	assert.Equal(t, ar.ResponseTypes, got.GetResponseTypes())
	assert.Equal(t, ar.RedirectURI.String(), got.GetRedirectURI().String())
	assert.Equal(t, ar.State, got.GetState())
	assert.Equal(t, ar.ResponseMode, got.GetResponseMode())
	assert.Equal(t, ar.DefaultResponseMode, got.GetDefaultResponseMode())

	require.NoError(t, s.DeletePARSession(ctx, uri))
	_, err = s.GetPARSession(ctx, uri)
	requireNotFound(t, err)
	require.NoError(t, s.DeletePARSession(ctx, uri))

	// An expired request is refused.
	expired := newAuthorizeRequest(t, c, "par-2", ms(-time.Second))
	require.NoError(t, s.CreatePARSession(ctx, uri+"2", expired))
	_, err = s.GetPARSession(ctx, uri+"2")
	requireNotFound(t, err)
}

// testTransactions checks fosite's storage.Transactional, for backends that
// implement it: writes in a rolled-back transaction vanish, and every method
// sees the writes of the transaction in its context.
func testTransactions(t *testing.T, s storage.Storage) {
	tx, ok := s.(fositestorage.Transactional)
	if !ok {
		t.Skipf("%T does not implement fosite's storage.Transactional", s)
	}
	ctx := t.Context()
	c := createClient(t, s, "c1")
	req := newRequest(c, "req-1", "alice", ms(time.Hour))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-0", "at-0", req))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-0", req))

	txCtx, err := tx.BeginTX(ctx)
	require.NoError(t, err)
	require.NoError(t, s.RotateRefreshToken(txCtx, "req-1", "rt-0"))
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(txCtx, "rt-1", "at-1", req))
	_, err = s.GetRefreshTokenSession(txCtx, "rt-1", new(openid.DefaultSession))
	require.NoError(t, err, "a transaction sees its own writes")
	_, err = s.GetRefreshTokenSession(txCtx, "rt-0", nil)
	require.ErrorIs(t, err, fosite.ErrInactiveToken)
	require.NoError(t, tx.Rollback(txCtx))

	_, err = s.GetRefreshTokenSession(ctx, "rt-1", nil)
	requireNotFound(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-0", nil)
	require.NoError(t, err, "rollback must undo the rotation")
	_, err = s.GetAccessTokenSession(ctx, "at-0", nil)
	require.NoError(t, err, "rollback must undo the access-token deletion")

	txCtx, err = tx.BeginTX(ctx)
	require.NoError(t, err)
	require.NoError(t, s.RotateRefreshToken(txCtx, "req-1", "rt-0"))
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(txCtx, "rt-1", "at-1", req))
	require.NoError(t, tx.Commit(txCtx))
	_, err = s.GetRefreshTokenSession(ctx, "rt-1", nil)
	require.NoError(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-0", nil)
	require.ErrorIs(t, err, fosite.ErrInactiveToken)

	// A transaction whose conditional write finds its token used writes
	// nothing, whether the store reports it at the write or at Commit.
	txCtx, err = tx.BeginTX(ctx)
	require.NoError(t, err)
	err = s.RotateRefreshToken(txCtx, "req-1", "rt-0")
	if err == nil {
		require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-2", req))
		require.NoError(t, s.CreateRefreshTokenSession(txCtx, "rt-2", "at-2", req))
		err = tx.Commit(txCtx)
	}
	require.ErrorIs(t, err, fosite.ErrNotFound)
	require.NoError(t, tx.Rollback(txCtx), "rolling back a failed transaction")
	_, err = s.GetAccessTokenSession(ctx, "at-2", nil)
	requireNotFound(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-2", nil)
	requireNotFound(t, err)
	_, err = s.GetAccessTokenSession(ctx, "at-1", nil)
	require.NoError(t, err, "a failed rotation must not touch the current pair")

	require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code-0", req))
	for i, want := range []error{nil, fosite.ErrInvalidatedAuthorizeCode} {
		txCtx, err = tx.BeginTX(ctx)
		require.NoError(t, err)
		at := fmt.Sprint("code-at-", i)
		err = s.InvalidateAuthorizeCodeSession(txCtx, "code-0")
		if err == nil {
			require.NoError(t, s.CreateAccessTokenSession(txCtx, at, req))
			err = tx.Commit(txCtx)
		}
		if want == nil {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, want)
		require.NoError(t, tx.Rollback(txCtx))
		_, err = s.GetAccessTokenSession(ctx, at, nil)
		requireNotFound(t, err)
	}
}

func testLinkIdentity(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)

	// Rule 3: a new person.
	u, created, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-1", Name: "Alice", Picture: "https://img/a", Now: now})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "union-1", u.UnionID)
	assert.Equal(t, "Alice", u.Name)
	assert.Equal(t, "https://img/a", u.Picture)
	assert.True(t, now.Equal(u.CreatedAt))

	// Rule 1: the same identity again.
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "Alice", u.Name, "empty name must not overwrite")

	// Rule 2: another app, same unionid: linked to the same user.
	later := now.Add(time.Second)
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-b", OpenID: "open-b", UnionID: "union-1", NewSubject: "sub-3", Name: "Alice B", Now: later})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "Alice B", u.Name, "a non-empty name is stored")

	ids, err := s.Identities(ctx, "sub-1")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	assert.Equal(t, "app-a", ids[0].AppID)
	assert.Equal(t, "open-a", ids[0].OpenID)
	assert.Equal(t, "union-1", ids[0].UnionID)
	assert.Equal(t, "app-b", ids[1].AppID)
	assert.Equal(t, "sub-1", ids[1].Subject)
	assert.True(t, later.Equal(ids[1].CreatedAt))

	id, err := s.Identity(ctx, "app-b", "open-b")
	require.NoError(t, err)
	assert.Equal(t, ids[1], id)

	got, err := s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "Alice B", got.Name)
	assert.Equal(t, "union-1", got.UnionID)
	for _, sub := range []string{"sub-2", "sub-3"} {
		_, err = s.User(ctx, sub)
		requireNotFound(t, err)
	}

	// Rule 3 without a unionid; the same openid in another app is another
	// person.
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-c", OpenID: "open-a", NewSubject: "sub-4", Now: now})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "sub-4", u.Subject)
	assert.Empty(t, u.UnionID)
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-c", OpenID: "open-a", NewSubject: "sub-5", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-4", u.Subject)

	// Two users without unionid coexist (empty is not a unionid).
	_, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-c", OpenID: "open-z", NewSubject: "sub-6", Now: now})
	require.NoError(t, err)
	assert.True(t, created)
}

func testLinkIdentityUnionIDAttach(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	// An identity first seen without a unionid...
	_, created, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", NewSubject: "sub-1", Now: now})
	require.NoError(t, err)
	require.True(t, created)
	// ...gets it attached when a later login brings it.
	u, created, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-a", OpenID: "open-a", UnionID: "union-1", NewSubject: "sub-x", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)
	assert.Equal(t, "union-1", u.UnionID)
	id, err := s.Identity(ctx, "app-a", "open-a")
	require.NoError(t, err)
	assert.Equal(t, "union-1", id.UnionID)
	got, err := s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "union-1", got.UnionID)

	// Cross-app: the unionid now links app-b's identity to the same user.
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-b", OpenID: "open-b", UnionID: "union-1", NewSubject: "sub-y", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-1", u.Subject)

	// A unionid that another user holds is not attached.
	_, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-c", OpenID: "open-c", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)
	require.True(t, created)
	u, created, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-c", OpenID: "open-c", UnionID: "union-1", NewSubject: "sub-z", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-2", u.Subject)
	assert.Empty(t, u.UnionID)
	id, err = s.Identity(ctx, "app-c", "open-c")
	require.NoError(t, err)
	assert.Empty(t, id.UnionID)
	got, err = s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "union-1", got.UnionID)
}

func testUsers(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(-time.Hour)
	_, _, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app", OpenID: "o1", UnionID: "union-1", NewSubject: "sub-1", Now: now})
	require.NoError(t, err)
	_, _, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app", OpenID: "o2", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)

	require.NoError(t, s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.PhoneNumber = "+8613800138000"
		u.Name = "Bob"
		u.Picture = "https://img/b"
		u.UnionID = "union-2"
		return u, nil
	}))
	u, err := s.User(ctx, "sub-2")
	require.NoError(t, err)
	assert.Equal(t, "+8613800138000", u.PhoneNumber)
	assert.Equal(t, "Bob", u.Name)
	assert.Equal(t, "https://img/b", u.Picture)
	assert.Equal(t, "union-2", u.UnionID)
	assert.True(t, now.Equal(u.CreatedAt))
	assert.True(t, u.UpdatedAt.After(now))

	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.UnionID = "union-1"
		return u, nil
	})
	assert.ErrorIs(t, err, storage.ErrAlreadyExists, "a unionid is held by one user")
	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.Subject = "sub-9"
		return u, nil
	})
	assert.Error(t, err, "the subject cannot change")
	errBoom := errors.New("boom")
	assert.ErrorIs(t, s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) { return u, errBoom }), errBoom)

	// The unionid of sub-2 now links new identities to it.
	u, created, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app-b", OpenID: "o3", UnionID: "union-2", NewSubject: "sub-3", Now: now})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "sub-2", u.Subject)
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t0 := ms(-time.Hour)
	k1 := storage.SigningKey{KID: "b", Algorithm: "RS256", Private: []byte("enc-1"), Public: []byte(`{"kty":"RSA"}`), CreatedAt: t0, ActivatesAt: t0.Add(time.Minute)}
	k2 := storage.SigningKey{KID: "a", Algorithm: "ES256", Private: []byte("enc-2"), Public: []byte(`{"kty":"EC"}`), CreatedAt: t0, ActivatesAt: t0.Add(time.Minute)}
	k3 := storage.SigningKey{KID: "0", Algorithm: "ES256", Private: []byte("enc-3"), Public: []byte(`{"kty":"EC"}`), CreatedAt: t0.Add(time.Second), ActivatesAt: t0.Add(time.Hour)}
	for _, k := range []storage.SigningKey{k1, k2, k3} {
		require.NoError(t, s.CreateSigningKey(ctx, k))
	}
	assert.ErrorIs(t, s.CreateSigningKey(ctx, k1), storage.ErrAlreadyExists)

	keys, err := s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 3)
	for i, want := range []storage.SigningKey{k2, k1, k3} {
		got := keys[i]
		assert.Equal(t, want.KID, got.KID)
		assert.Equal(t, want.Algorithm, got.Algorithm)
		assert.Equal(t, want.Private, got.Private)
		assert.JSONEq(t, string(want.Public), string(got.Public))
		assert.True(t, want.CreatedAt.Equal(got.CreatedAt))
		assert.True(t, want.ActivatesAt.Equal(got.ActivatesAt))
	}

	require.NoError(t, s.DeleteSigningKey(ctx, "b"))
	require.NoError(t, s.DeleteSigningKey(ctx, "b"))
	keys, err = s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, "a", keys[0].KID)
	assert.Equal(t, "0", keys[1].KID)
}

func testSessionKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	k := storage.SessionKey{Subject: "sub-1", AppID: "app", OpenID: "open", Ciphertext: []byte("c1"), UpdatedAt: ms(-time.Minute)}
	require.NoError(t, s.PutSessionKey(ctx, k))
	require.NoError(t, s.PutSessionKey(ctx, storage.SessionKey{Subject: "sub-1", AppID: "app-2", OpenID: "open-2", Ciphertext: []byte("other"), UpdatedAt: ms(0)}))
	got, err := s.SessionKey(ctx, "sub-1", "app")
	require.NoError(t, err)
	assert.Equal(t, k.OpenID, got.OpenID)
	assert.Equal(t, k.Ciphertext, got.Ciphertext)
	assert.True(t, k.UpdatedAt.Equal(got.UpdatedAt))

	k2 := storage.SessionKey{Subject: "sub-1", AppID: "app", OpenID: "open", Ciphertext: []byte("c2"), UpdatedAt: ms(0)}
	require.NoError(t, s.PutSessionKey(ctx, k2))
	got, err = s.SessionKey(ctx, "sub-1", "app")
	require.NoError(t, err)
	assert.Equal(t, []byte("c2"), got.Ciphertext, "Put replaces")
	assert.True(t, k2.UpdatedAt.Equal(got.UpdatedAt))
	got, err = s.SessionKey(ctx, "sub-1", "app-2")
	require.NoError(t, err)
	assert.Equal(t, []byte("other"), got.Ciphertext)
	_, err = s.SessionKey(ctx, "sub-2", "app")
	requireNotFound(t, err)
}

func testServerToken(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t1 := storage.ServerToken{AppID: "app", Token: []byte("t1"), ExpiresAt: ms(time.Hour)}
	got, err := s.SaveServerToken(ctx, t1)
	require.NoError(t, err)
	assertServerToken(t, t1, got)

	// A staler token loses and the caller learns the winner.
	stale := storage.ServerToken{AppID: "app", Token: []byte("t0"), ExpiresAt: ms(30 * time.Minute)}
	got, err = s.SaveServerToken(ctx, stale)
	require.NoError(t, err)
	assertServerToken(t, t1, got)
	// So does one that expires at the same time.
	same := storage.ServerToken{AppID: "app", Token: []byte("t1-bis"), ExpiresAt: t1.ExpiresAt}
	got, err = s.SaveServerToken(ctx, same)
	require.NoError(t, err)
	assertServerToken(t, t1, got)
	got, err = s.ServerToken(ctx, "app")
	require.NoError(t, err)
	assertServerToken(t, t1, got)

	t2 := storage.ServerToken{AppID: "app", Token: []byte("t2"), ExpiresAt: ms(2 * time.Hour)}
	got, err = s.SaveServerToken(ctx, t2)
	require.NoError(t, err)
	assertServerToken(t, t2, got)

	other := storage.ServerToken{AppID: "app-2", Token: []byte("x"), ExpiresAt: ms(time.Minute)}
	_, err = s.SaveServerToken(ctx, other)
	require.NoError(t, err)

	// Delete only removes the token the caller saw.
	require.NoError(t, s.DeleteServerToken(ctx, "app", t1.ExpiresAt))
	got, err = s.ServerToken(ctx, "app")
	require.NoError(t, err)
	assertServerToken(t, t2, got)
	require.NoError(t, s.DeleteServerToken(ctx, "app", t2.ExpiresAt))
	_, err = s.ServerToken(ctx, "app")
	requireNotFound(t, err)
	require.NoError(t, s.DeleteServerToken(ctx, "app", t2.ExpiresAt))
	got, err = s.ServerToken(ctx, "app-2")
	require.NoError(t, err)
	assertServerToken(t, other, got)
}

func assertServerToken(t *testing.T, want, got storage.ServerToken) {
	t.Helper()
	assert.Equal(t, want.AppID, got.AppID)
	assert.Equal(t, want.Token, got.Token)
	assert.True(t, want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt: got %v, want %v", got.ExpiresAt, want.ExpiresAt)
}

func testLeases(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	acquire := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, holder, ttl)
		require.NoError(t, err)
		return ok
	}
	assert.True(t, acquire("janitor", "a", time.Minute))
	assert.False(t, acquire("janitor", "b", time.Minute), "the lease is exclusive")
	assert.True(t, acquire("janitor", "a", time.Minute), "the holder may extend")
	assert.True(t, acquire("rotator", "b", time.Minute), "leases are independent")

	require.NoError(t, s.ReleaseLease(ctx, "janitor", "b"), "releasing a lease held by another is a no-op")
	assert.False(t, acquire("janitor", "b", time.Minute))
	require.NoError(t, s.ReleaseLease(ctx, "janitor", "a"))
	assert.True(t, acquire("janitor", "b", time.Minute), "a released lease is free")
	require.NoError(t, s.ReleaseLease(ctx, "unknown", "a"))

	// An expired lease is free.
	assert.True(t, acquire("short", "a", 10*time.Millisecond))
	time.Sleep(30 * time.Millisecond)
	assert.True(t, acquire("short", "b", time.Minute), "an expired lease is free")
	assert.False(t, acquire("short", "a", time.Minute))
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
