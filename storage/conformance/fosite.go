package conformance

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

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

// testCodeSessionsInWriteSet creates an authorization code and its PKCE
// and OpenID Connect sessions in one write set, as the authorization
// response does (each a sanitised copy of one request, with its own form
// values), and reads them back without and with the exchange's prefetch:
// a backend may keep the sessions in the code's row (sqlstore), but each
// still answers, and is deleted, on its own.
func testCodeSessionsInWriteSet(t *testing.T, s storage.Storage) {
	tx, ok := s.(fositestorage.Transactional)
	if !ok {
		t.Skipf("%T does not implement fosite's storage.Transactional", s)
	}
	ctx := t.Context()
	c := createClient(t, s, "c1")
	create := func(id, code, sig string) (codeReq, pkceReq, oidcReq *fosite.Request) {
		base := newRequest(c, id, "alice", ms(10*time.Minute))
		base.Session.SetExpiresAt(fosite.AuthorizeCode, ms(10*time.Minute))
		base.Form = url.Values{"code_challenge": {"ch-" + id}, "code_challenge_method": {"S256"}, "nonce": {"nonce-" + id}, "redirect_uri": {"https://rp.example/cb"}}
		codeReq = base.Sanitize(nil).(*fosite.Request)
		pkceReq = base.Sanitize([]string{"code_challenge", "code_challenge_method"}).(*fosite.Request)
		oidcReq = base.Sanitize([]string{"nonce"}).(*fosite.Request)
		txCtx, err := tx.BeginTX(ctx)
		require.NoError(t, err)
		require.NoError(t, s.CreateAuthorizeCodeSession(txCtx, sig, codeReq))
		require.NoError(t, s.CreateOpenIDConnectSession(txCtx, code, oidcReq))
		require.NoError(t, s.CreatePKCERequestSession(txCtx, sig, pkceReq))
		require.NoError(t, tx.Commit(txCtx))
		return codeReq, pkceReq, oidcReq
	}
	getOIDC := func(ctx context.Context, code string) (fosite.Requester, *openid.DefaultSession, error) {
		proto := new(openid.DefaultSession)
		ar := fosite.NewAuthorizeRequest()
		ar.Session = proto
		got, err := s.GetOpenIDConnectSession(ctx, code, ar)
		return got, proto, err
	}

	// Without a prefetch.
	codeReq, pkceReq, oidcReq := create("req-1", "code-1.raw", "sig-1")
	proto := new(openid.DefaultSession)
	got, err := s.GetAuthorizeCodeSession(ctx, "sig-1", proto)
	require.NoError(t, err)
	checkRequest(t, codeReq, got, proto)
	proto = new(openid.DefaultSession)
	got, err = s.GetPKCERequestSession(ctx, "sig-1", proto)
	require.NoError(t, err)
	checkRequest(t, pkceReq, got, proto)
	got, proto, err = getOIDC(ctx, "code-1.raw")
	require.NoError(t, err)
	checkRequest(t, oidcReq, got, proto)
	_, _, err = getOIDC(ctx, "sig-1")
	requireNotFound(t, err)
	require.NoError(t, s.DeleteOpenIDConnectSession(ctx, "code-1.raw"))
	_, _, err = getOIDC(ctx, "code-1.raw")
	requireNotFound(t, err)
	require.NoError(t, s.DeletePKCERequestSession(ctx, "sig-1"))
	_, err = s.GetPKCERequestSession(ctx, "sig-1", nil)
	requireNotFound(t, err)
	_, err = s.GetAuthorizeCodeSession(ctx, "sig-1", new(openid.DefaultSession))
	require.NoError(t, err, "the code outlives its sessions")

	// The exchange: fosite's reads and deletes with the prefetch, the
	// invalidation in a write set; then a replay.
	codeReq, pkceReq, oidcReq = create("req-2", "code-2.raw", "sig-2")
	exCtx, pre := storage.WithPrefetch(ctx)
	pre.SetAuthorizeCode("code-2.raw")
	proto = new(openid.DefaultSession)
	got, err = s.GetAuthorizeCodeSession(exCtx, "sig-2", proto)
	require.NoError(t, err)
	checkRequest(t, codeReq, got, proto)
	proto = new(openid.DefaultSession)
	got, err = s.GetPKCERequestSession(exCtx, "sig-2", proto)
	require.NoError(t, err)
	checkRequest(t, pkceReq, got, proto)
	require.NoError(t, s.DeletePKCERequestSession(exCtx, "sig-2"))
	txCtx, err := tx.BeginTX(exCtx)
	require.NoError(t, err)
	require.NoError(t, s.InvalidateAuthorizeCodeSession(txCtx, "sig-2"))
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-2", codeReq))
	require.NoError(t, tx.Commit(txCtx))
	got, proto, err = getOIDC(exCtx, "code-2.raw")
	require.NoError(t, err, "fosite reads the session after the tokens commit")
	checkRequest(t, oidcReq, got, proto)
	require.NoError(t, s.DeleteOpenIDConnectSession(exCtx, "code-2.raw"))
	_, _, err = getOIDC(ctx, "code-2.raw")
	requireNotFound(t, err)
	_, err = s.GetPKCERequestSession(ctx, "sig-2", nil)
	requireNotFound(t, err)
	got, err = s.GetAuthorizeCodeSession(ctx, "sig-2", new(openid.DefaultSession))
	require.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode)
	require.NotNil(t, got)

	// An exchange that fails after deleting the PKCE session (a wrong
	// verifier): the caller's Flush makes what the backend put off.
	create("req-3", "code-3.raw", "sig-3")
	exCtx, pre = storage.WithPrefetch(ctx)
	pre.SetAuthorizeCode("code-3.raw")
	_, err = s.GetAuthorizeCodeSession(exCtx, "sig-3", new(openid.DefaultSession))
	require.NoError(t, err)
	_, err = s.GetPKCERequestSession(exCtx, "sig-3", new(openid.DefaultSession))
	require.NoError(t, err)
	require.NoError(t, s.DeletePKCERequestSession(exCtx, "sig-3"))
	_, err = s.GetPKCERequestSession(exCtx, "sig-3", nil)
	requireNotFound(t, err)
	require.NoError(t, pre.Flush(ctx))
	_, err = s.GetPKCERequestSession(ctx, "sig-3", nil)
	requireNotFound(t, err)
	_, err = s.GetAuthorizeCodeSession(ctx, "sig-3", new(openid.DefaultSession))
	require.NoError(t, err, "the code stays active")
	_, _, err = getOIDC(ctx, "code-3.raw")
	require.NoError(t, err)

	txCtx, err = tx.BeginTX(ctx)
	require.NoError(t, err)
	err = s.InvalidateAuthorizeCodeSession(txCtx, "sig-2")
	if err == nil {
		err = tx.Commit(txCtx)
	} else {
		_ = tx.Rollback(txCtx)
	}
	require.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode, "a code is used once")
}
