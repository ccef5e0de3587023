package storage

import (
	"slices"
	"time"

	"github.com/ory/fosite"
)

// Token endpoint authentication methods a client can register (RFC 7591 §2).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// Client is a registered OAuth 2.0 client: the RFC 7591 metadata wxoidc
// supports plus its own fields. *Client implements fosite.Client.
type Client struct {
	ID string
	// SecretHash is the keyed hash of the client secret (never the secret);
	// empty for public clients.
	SecretHash []byte
	Name       string

	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	Scopes                 []string
	Audience               []string

	// TokenEndpointAuthMethod is one of the AuthMethod constants; "none"
	// makes the client public.
	TokenEndpointAuthMethod string
	// IDTokenSignedResponseAlg is the JWS alg of the client's ID tokens;
	// empty means RS256, OpenID Connect's default.
	IDTokenSignedResponseAlg string

	// WeChatAppID is the WeChat Mini Program appid the client stands for
	// (clients allowed the WeChat grant).
	WeChatAppID string
	// SkipConsent marks a first-party client that gets no consent screen.
	SkipConsent bool

	// JWKS is the client's public key set as JSON (RFC 7591 jwks), and
	// JWKSURI where it is published (jwks_uri); at most one is set. They
	// verify the client's signed request objects.
	JWKS    []byte
	JWKSURI string
	// RequestObjectSigningAlg is the only JWS alg the client's request
	// objects may use (OpenID Connect Registration §2); "none" allows
	// unsigned ones; empty means any signed one.
	RequestObjectSigningAlg string
	// RequestURIs are the request_uri values the client may pass by
	// reference (OpenID Connect Core §6.2), besides PAR's.
	RequestURIs []string

	// BackchannelLogoutURI receives logout tokens (OpenID Connect
	// Back-Channel Logout 1.0 §2.2); empty means none are sent.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired asks for sid in logout tokens.
	BackchannelLogoutSessionRequired bool

	CreatedAt time.Time
	UpdatedAt time.Time
}

var _ fosite.Client = (*Client)(nil)

// GetID implements fosite.Client.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret implements fosite.Client.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs implements fosite.Client.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes implements fosite.Client. No registered grant types means
// authorization_code, as RFC 7591 §2 says.
func (c *Client) GetGrantTypes() fosite.Arguments {
	if len(c.GrantTypes) == 0 {
		return fosite.Arguments{"authorization_code"}
	}
	return c.GrantTypes
}

// GetResponseTypes implements fosite.Client. No registered response types
// means code, as RFC 7591 §2 says.
func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return c.ResponseTypes
}

// GetScopes implements fosite.Client.
func (c *Client) GetScopes() fosite.Arguments { return c.Scopes }

// GetAudience implements fosite.Client.
func (c *Client) GetAudience() fosite.Arguments { return c.Audience }

// GetResponseModes implements fosite.ResponseModeClient: every client may
// ask for the response modes discovery advertises.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return responseModes
}

var responseModes = []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}

// IsPublic implements fosite.Client: a client that authenticates with
// "none" is public.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthMethodNone }

// Clone returns a deep copy of c.
func (c Client) Clone() Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audience = slices.Clone(c.Audience)
	c.JWKS = slices.Clone(c.JWKS)
	c.RequestURIs = slices.Clone(c.RequestURIs)
	return c
}

// User is a provider user. Subject is opaque and never changes.
type User struct {
	Subject string
	// UnionID is the WeChat unionid linked to the user, if WeChat gave one.
	UnionID string
	// Name and Picture are what WeChat's web login returned (nickname,
	// headimgurl), or what an operator set; Mini Programs no longer
	// provide them.
	Name    string
	Picture string
	// PhoneNumber is in E.164 (+8613800138000); empty when unknown.
	// PhoneNumberVerified reports that WeChat verified it (a phone code);
	// a number an operator entered is not verified until then.
	PhoneNumber         string
	PhoneNumberVerified bool
	// ExternalID is the operator's own ID of the person; unique when set.
	ExternalID string
	// Roles name what the user may do in the admin console (RoleAdmin,
	// RoleViewer); sorted, no duplicates.
	Roles []string
	// Disabled users get no token and no login session. It changes only
	// through UserStore.SetUserDisabled, never through UpdateUser.
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// LastLoginAt is the time of the latest login (UserStore.RecordLogin);
	// zero if the user never signed in.
	LastLoginAt time.Time
}

// Roles a user may hold.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// Clone returns a deep copy of u.
func (u User) Clone() User {
	u.Roles = slices.Clone(u.Roles)
	return u
}

// Identity is a WeChat identity linked to a user: an openid is scoped to
// one app, a unionid to one WeChat Open Platform account. A user has at
// most one identity per app.
type Identity struct {
	AppID   string
	OpenID  string
	UnionID string
	Subject string
	// Kind is the kind of app the identity came through ("miniprogram",
	// "website", "official"); empty for identities linked before wxoidc
	// recorded it.
	Kind        string
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// LinkRequest asks UserStore.LinkIdentity for the user behind a WeChat
// identity.
type LinkRequest struct {
	AppID   string
	OpenID  string
	UnionID string // may be empty
	Kind    string // the app's kind, stored on a new identity
	// NewSubject is the subject to give the user if one must be created.
	// Empty means create no user (registration "existing"): an identity
	// then links only to a user found by UnionID or by PhoneNumber.
	NewSubject string
	// PhoneNumber, when non-empty, is a number WeChat verified for this
	// person (E.164). It is stored on the user, verified; and with an
	// empty NewSubject, an unknown identity links to the one enabled user
	// with this number that has no identity of AppID yet.
	PhoneNumber string
	// Name and Picture, when non-empty, are stored on the user (created or
	// found).
	Name    string
	Picture string
	// ClientID and IP go into the events the link records.
	ClientID string
	IP       string
	// Now is the creation and update time.
	Now time.Time
}

// LinkResult is what UserStore.LinkIdentity found or did.
type LinkResult struct {
	// User is the user behind the identity, as stored after the call.
	User User
	// Created reports that the user was created; Linked, that the
	// identity was linked to a user that already existed.
	Created, Linked bool
	// Events are the events the call recorded, in order.
	Events []Event
}

// SigningKey is a stored signing key. Its lifecycle is owned by package
// keys; storage only keeps it.
type SigningKey struct {
	KID       string
	Algorithm string
	// Private is the private JWK, encrypted by the caller.
	Private []byte
	// Public is the public JWK as JSON.
	Public []byte
	// CreatedAt is when the key was created and published in the JWKS.
	CreatedAt time.Time
	// ActivatesAt is when the key starts signing (after CreatedAt, so that
	// relying parties have fetched it before they see a token it signed).
	ActivatesAt time.Time
}

// SessionKey is a user's current WeChat session_key for one Mini Program,
// encrypted by the caller.
type SessionKey struct {
	Subject    string
	AppID      string
	OpenID     string
	Ciphertext []byte
	UpdatedAt  time.Time
}

// ServerToken is a WeChat server access token of one app, shared by every
// replica. Token is encrypted by the caller.
type ServerToken struct {
	AppID     string
	Token     []byte
	ExpiresAt time.Time
}
