package provider

import (
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/storage"
)

// Session is the fosite session wxoidc stores with every code and token. It
// is serialized as JSON, so all state is in exported fields.
//
// It never stores a kid: the signer puts the kid of the key that actually
// signs into each header, so a key rotation between authorization and
// refresh cannot produce a token that names the wrong key.
type Session struct {
	*openid.DefaultSession

	// ClientID is the client the session was granted to (the client_id
	// claim of JWT access tokens, RFC 9068 §2.2).
	ClientID string `json:"client_id"`
	// AccessClaims are extra claims for JWT access tokens.
	AccessClaims map[string]any `json:"access_claims,omitempty"`
	// RefreshScope, when set, is the whole grant's scope: a refresh asked
	// for a narrower access token, and the new refresh token keeps this
	// scope (RFC 6749 §6).
	RefreshScope []string `json:"refresh_scope,omitempty"`

	// sessionKey is the WeChat session key a Mini Program login stores with
	// its tokens; it lives only between the grant's Handle and Populate
	// steps (never serialized, never cloned).
	sessionKey *storage.SessionKey
	// login is the Mini Program login to record with the tokens; like
	// sessionKey, it lives only between Handle and Populate.
	login *storage.Login
}

var (
	_ fosite.Session = (*Session)(nil)
	_ openid.Session = (*Session)(nil)
)

// newSession returns an empty session, the prototype fosite unmarshals
// stored sessions into.
func newSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// newUserSession returns the session of a user signing in to client at
// authTime.
func newUserSession(issuer string, client fosite.Client, subject string, authTime, requestedAt time.Time, idTokenAlg string) *Session {
	s := newSession()
	s.Subject = subject
	s.ClientID = client.GetID()
	s.Claims.Issuer = issuer
	s.Claims.Subject = subject
	s.Claims.AuthTime = authTime.UTC().Truncate(time.Second)
	s.Claims.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	// The alg chooses the signing key; fosite drops "alg" from the header
	// map it passes on, and the signer reads it back with Get.
	s.Headers.Add("alg", idTokenAlg)
	return s
}

// Clone implements fosite.Session with a deep copy.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(fosite.Session)
}

// GetJWTClaims implements oauth2.JWTSessionContainer. It builds fresh claims
// on every call, so a refreshed token never inherits the iat or jti of the
// one before it.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := make(map[string]any, len(s.AccessClaims)+1)
	for k, v := range s.AccessClaims {
		extra[k] = v
	}
	extra["client_id"] = s.ClientID
	return &accessClaims{
		JWTClaims: &jwt.JWTClaims{Subject: s.Subject, Extra: extra},
		clientID:  s.ClientID,
	}
}

// GetJWTHeader implements oauth2.JWTSessionContainer: access tokens are
// typed at+jwt (RFC 9068 §2.1).
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
}

// accessClaims defaults the audience of an access token to the client it was
// issued to when the request granted no audience: RFC 9068 requires aud.
type accessClaims struct {
	*jwt.JWTClaims
	clientID string
}

func (c *accessClaims) With(expiry time.Time, scope, audience []string) jwt.JWTClaimsContainer {
	if len(audience) == 0 && c.clientID != "" {
		audience = []string{c.clientID}
	}
	c.JWTClaims.With(expiry, scope, audience)
	return c
}
