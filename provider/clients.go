package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// ClientMetadata is a client document with the RFC 7591 §2 names, plus
// wxoidc's wechat_appid and skip_consent. The admin API, the CLI and the
// config file all speak it.
type ClientMetadata struct {
	ClientID                 string   `json:"client_id" yaml:"client_id"`
	ClientSecret             string   `json:"client_secret,omitempty" yaml:"client_secret,omitempty"`
	ClientName               string   `json:"client_name,omitempty" yaml:"client_name,omitempty"`
	RedirectURIs             []string `json:"redirect_uris,omitempty" yaml:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris,omitempty" yaml:"post_logout_redirect_uris,omitempty"`
	GrantTypes               []string `json:"grant_types,omitempty" yaml:"grant_types,omitempty"`
	ResponseTypes            []string `json:"response_types,omitempty" yaml:"response_types,omitempty"`
	Scope                    string   `json:"scope,omitempty" yaml:"scope,omitempty"`
	Audience                 []string `json:"audience,omitempty" yaml:"audience,omitempty"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method,omitempty" yaml:"token_endpoint_auth_method,omitempty"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty" yaml:"id_token_signed_response_alg,omitempty"`
	WeChatAppID              string   `json:"wechat_appid,omitempty" yaml:"wechat_appid,omitempty"`
	SkipConsent              bool     `json:"skip_consent,omitempty" yaml:"skip_consent,omitempty"`

	JWKS                             JSONObject `json:"jwks,omitempty" yaml:"jwks,omitempty"`
	JWKSURI                          string     `json:"jwks_uri,omitempty" yaml:"jwks_uri,omitempty"`
	RequestObjectSigningAlg          string     `json:"request_object_signing_alg,omitempty" yaml:"request_object_signing_alg,omitempty"`
	RequestURIs                      []string   `json:"request_uris,omitempty" yaml:"request_uris,omitempty"`
	BackchannelLogoutURI             string     `json:"backchannel_logout_uri,omitempty" yaml:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool       `json:"backchannel_logout_session_required,omitempty" yaml:"backchannel_logout_session_required,omitempty"`

	ClientIDIssuedAt      int64  `json:"client_id_issued_at,omitempty" yaml:"-"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty" yaml:"-"`
}

// Metadata returns the document of a stored client (never its secret).
func Metadata(c storage.Client) ClientMetadata {
	return ClientMetadata{
		ClientID:                 c.ID,
		ClientName:               c.Name,
		RedirectURIs:             c.RedirectURIs,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		GrantTypes:               c.GetGrantTypes(),
		ResponseTypes:            responseTypes(&c),
		Scope:                    strings.Join(c.Scopes, " "),
		Audience:                 c.Audience,
		TokenEndpointAuthMethod:  c.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: idTokenAlg(&c),
		WeChatAppID:              c.WeChatAppID,
		SkipConsent:              c.SkipConsent,
		JWKS:                     JSONObject(c.JWKS),
		JWKSURI:                  c.JWKSURI,
		RequestObjectSigningAlg:  c.RequestObjectSigningAlg,
		RequestURIs:              c.RequestURIs,
		BackchannelLogoutURI:     c.BackchannelLogoutURI,
		ClientIDIssuedAt:         c.CreatedAt.Unix(),

		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
	}
}

// responseTypes are the response types Metadata shows: fosite's default
// (code) only for a client with the authorization_code grant, so that a
// document read back passes the RFC 7591 §2.1 consistency check.
func responseTypes(c *storage.Client) []string {
	if len(c.ResponseTypes) == 0 && !slices.Contains(c.GetGrantTypes(), "authorization_code") {
		return nil
	}
	return c.GetResponseTypes()
}

// ClientError is an RFC 7591 §3.2.2 registration error.
type ClientError struct {
	Code        string `json:"error"` // invalid_redirect_uri or invalid_client_metadata
	Description string `json:"error_description"`
	// Field is the metadata field at fault (e.g. "redirect_uris"), so that
	// forms can show the message beside it; an extension member, which
	// RFC 7591 clients ignore.
	Field string `json:"field,omitempty"`
}

func (e *ClientError) Error() string { return e.Code + ": " + e.Description }

func metadataError(field, format string, args ...any) *ClientError {
	return &ClientError{Code: "invalid_client_metadata", Description: fmt.Sprintf(format, args...), Field: field}
}

// Client validates m and returns the client to store, with defaults
// applied: confidential (client_secret_basic) unless it says none, the
// authorization_code grant and code response type, and RS256 ID tokens.
// dev allows http redirect URIs on any host.
func (m ClientMetadata) Client(dev bool, now time.Time) (storage.Client, error) {
	c := storage.Client{
		ID:                       m.ClientID,
		Name:                     m.ClientName,
		RedirectURIs:             m.RedirectURIs,
		PostLogoutRedirectURIs:   m.PostLogoutRedirectURIs,
		GrantTypes:               m.GrantTypes,
		ResponseTypes:            m.ResponseTypes,
		Scopes:                   strings.Fields(m.Scope),
		Audience:                 m.Audience,
		TokenEndpointAuthMethod:  m.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: m.IDTokenSignedResponseAlg,
		WeChatAppID:              m.WeChatAppID,
		SkipConsent:              m.SkipConsent,
		JWKS:                     []byte(m.JWKS),
		JWKSURI:                  m.JWKSURI,
		RequestObjectSigningAlg:  m.RequestObjectSigningAlg,
		RequestURIs:              m.RequestURIs,
		BackchannelLogoutURI:     m.BackchannelLogoutURI,
		CreatedAt:                now,

		BackchannelLogoutSessionRequired: m.BackchannelLogoutSessionRequired,
		UpdatedAt:                        now,
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = storage.AuthMethodBasic
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code"}
	}
	if len(c.ResponseTypes) == 0 && slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
	}
	if c.IDTokenSignedResponseAlg == "" {
		c.IDTokenSignedResponseAlg = keys.RS256
	}
	return c, ValidateClient(c, dev)
}

// Check is Client followed by CheckClientAlg (kept: the algorithms the
// provider keeps keys for) and CheckClientApp (apps: its WeChat apps):
// every rule a client document must pass, wherever it comes from (admin
// API, CLI, Dynamic Client Registration).
func (m ClientMetadata) Check(dev bool, now time.Time, kept []string, apps map[string]wechat.AppKind) (storage.Client, error) {
	c, err := m.Client(dev, now)
	if err == nil {
		err = CheckClientAlg(c, kept)
	}
	if err == nil {
		err = CheckClientApp(c, apps)
	}
	return c, err
}

// CheckClientAlg reports, as invalid_client_metadata, a client whose
// id_token_signed_response_alg (empty: RS256) has no signing key among
// kept, the algorithms the provider keeps keys for (keys.algorithms):
// such a client could never be issued an ID token.
func CheckClientAlg(c storage.Client, kept []string) error {
	alg := c.IDTokenSignedResponseAlg
	if alg == "" {
		alg = keys.RS256
	}
	if slices.Contains(kept, alg) {
		return nil
	}
	return metadataError("id_token_signed_response_alg", "id_token_signed_response_alg %s has no signing key: this provider keeps keys for %s (keys.algorithms); register the client with one of those, or add %s to keys.algorithms",
		alg, keys.OneOf(kept), alg)
}

// clientIDPattern is what a client id may look like (ValidateClient).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~@-]{1,128}$`)

// CheckClientApp reports why c cannot use the WeChat app it names, given
// the provider's apps (appid → kind): the WeChat grant needs a Mini
// Program app the provider holds the secret of. A nil apps checks
// nothing.
func CheckClientApp(c storage.Client, apps map[string]wechat.AppKind) error {
	if apps == nil || !slices.Contains(c.GrantTypes, GrantTypeWeChat) {
		return nil
	}
	kind, ok := apps[c.WeChatAppID]
	switch {
	case !ok:
		return metadataError("wechat_appid", "wechat_appid %q is not one of the provider's WeChat apps (wechat.apps), so the WeChat grant cannot work", c.WeChatAppID)
	case kind != wechat.KindMiniProgram:
		return metadataError("wechat_appid", "the WeChat grant needs a Mini Program app; %s is a %s app", c.WeChatAppID, kind)
	}
	return nil
}

// ValidateClient checks a client against what wxoidc supports and RFC 7591
// requires.
func ValidateClient(c storage.Client, dev bool) error {
	// The client id travels in URLs, HTTP Basic (form-encoded), paths of
	// the admin API, logs and metric labels: characters that mean
	// something in any of them (/ ? # % : + space), control characters
	// and non-ASCII are refused.
	if !clientIDPattern.MatchString(c.ID) {
		return metadataError("client_id", "client_id must be 1 to 128 characters, each a letter, a digit or one of . _ ~ @ -")
	}
	switch c.TokenEndpointAuthMethod {
	case storage.AuthMethodBasic, storage.AuthMethodPost, storage.AuthMethodNone:
	default:
		return metadataError("token_endpoint_auth_method", "token_endpoint_auth_method %q is not client_secret_basic, client_secret_post or none", c.TokenEndpointAuthMethod)
	}
	for _, g := range c.GrantTypes {
		if !grantTypes[g] {
			return metadataError("grant_types", "grant_type %q is not supported", g)
		}
	}
	if c.IsPublic() && slices.Contains(c.GrantTypes, "client_credentials") {
		return metadataError("grant_types", "a public client (token_endpoint_auth_method none) cannot use client_credentials")
	}
	if slices.Contains(c.GrantTypes, GrantTypeWeChat) {
		if !c.IsPublic() {
			return metadataError("token_endpoint_auth_method", "the WeChat grant is for public Mini Program clients (token_endpoint_auth_method none)")
		}
		if c.WeChatAppID == "" {
			return metadataError("wechat_appid", "the WeChat grant needs wechat_appid")
		}
	}
	for _, rt := range c.ResponseTypes {
		if rt != "code" {
			return metadataError("response_types", "response_type %q is not supported (only code)", rt)
		}
	}
	// RFC 7591 §2.1: the code response type needs the authorization_code
	// grant. (No response types means code by RFC 7591 §2's default, but
	// only a client with that grant ever uses it.)
	if len(c.ResponseTypes) > 0 && !slices.Contains(c.GetGrantTypes(), "authorization_code") {
		return metadataError("response_types", "response_type code needs the authorization_code grant in grant_types (RFC 7591, section 2.1)")
	}
	if slices.Contains(c.GrantTypes, "authorization_code") && len(c.RedirectURIs) == 0 {
		return &ClientError{Code: "invalid_redirect_uri", Description: "the authorization_code grant needs at least one redirect_uri", Field: "redirect_uris"}
	}
	for _, u := range c.RedirectURIs {
		if err := checkRedirectURI(u, dev); err != nil {
			return &ClientError{Code: "invalid_redirect_uri", Description: fmt.Sprintf("redirect_uri %q: %s", u, err), Field: "redirect_uris"}
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u, dev); err != nil {
			return &ClientError{Code: "invalid_redirect_uri", Description: fmt.Sprintf("post_logout_redirect_uri %q: %s", u, err), Field: "post_logout_redirect_uris"}
		}
	}
	if c.IDTokenSignedResponseAlg != "" && !keys.Supported(c.IDTokenSignedResponseAlg) {
		return metadataError("id_token_signed_response_alg", "id_token_signed_response_alg %q is not %s", c.IDTokenSignedResponseAlg, keys.OneOf(keys.SupportedAlgorithms()))
	}
	for _, s := range c.Scopes {
		if strings.ContainsAny(s, "\"\\") || s == "" {
			return metadataError("scope", "scope %q is not a valid scope token", s)
		}
	}
	return validateKeysAndLogout(c, dev)
}

// validateKeysAndLogout checks the metadata of request objects (OpenID
// Connect Registration §2, Core §6) and of back-channel logout (Back-Channel
// Logout 1.0 §2.2).
func validateKeysAndLogout(c storage.Client, dev bool) error {
	if len(c.JWKS) > 0 && c.JWKSURI != "" {
		return metadataError("jwks", "jwks and jwks_uri must not both be set (RFC 7591 §2)")
	}
	if len(c.JWKS) > 0 {
		if _, err := parseClientJWKS(c.JWKS); err != nil {
			return metadataError("jwks", "jwks: %s", err)
		}
	}
	if c.JWKSURI != "" {
		if err := checkServerURI(c.JWKSURI, dev); err != nil {
			return metadataError("jwks_uri", "jwks_uri %q: %s", c.JWKSURI, err)
		}
	}
	switch c.RequestObjectSigningAlg {
	case "", "none":
	default:
		if !slices.Contains(requestObjectAlgs, c.RequestObjectSigningAlg) {
			return metadataError("request_object_signing_alg", "request_object_signing_alg %q is not one of %s or none", c.RequestObjectSigningAlg, strings.Join(requestObjectAlgs, ", "))
		}
		if len(c.JWKS) == 0 && c.JWKSURI == "" {
			return metadataError("request_object_signing_alg", "request_object_signing_alg %s needs the client's keys in jwks or jwks_uri", c.RequestObjectSigningAlg)
		}
	}
	for _, u := range c.RequestURIs {
		if err := checkServerURI(u, dev); err != nil {
			return metadataError("request_uris", "request_uri %q: %s", u, err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := checkServerURI(c.BackchannelLogoutURI, dev); err != nil {
			return metadataError("backchannel_logout_uri", "backchannel_logout_uri %q: %s", c.BackchannelLogoutURI, err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		return metadataError("backchannel_logout_uri", "backchannel_logout_session_required needs a backchannel_logout_uri")
	}
	return nil
}

// checkServerURI checks a URI the provider itself calls (jwks_uri,
// request_uris, backchannel_logout_uri): absolute https (http on a
// loopback host, or anywhere in dev), without a fragment — a request_uri
// may carry one (OpenID Connect Core §6.2), which is kept for matching.
func checkServerURI(raw string, dev bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if dev || h == "127.0.0.1" || h == "::1" || h == "localhost" {
			return nil
		}
		return fmt.Errorf("must use https (http only for loopback hosts)")
	}
	return fmt.Errorf("scheme %q is not allowed", u.Scheme)
}

// JSONObject is a JSON object kept verbatim (the jwks of a client
// document). In YAML it is written as a mapping.
type JSONObject json.RawMessage

// MarshalJSON implements json.Marshaler.
func (o JSONObject) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

// UnmarshalJSON implements json.Unmarshaler; it accepts only an object
// (or null).
func (o *JSONObject) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*o = nil
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeOf(map[string]any{}), Field: "jwks"}
	}
	*o = append((*o)[:0], b...)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (o *JSONObject) UnmarshalYAML(n *yaml.Node) error {
	var v map[string]any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	*o = b
	return nil
}

// checkRedirectURI applies RFC 6749 §3.1.2 and the security BCP: absolute,
// no fragment, https — or http on a loopback host (RFC 8252 §7.3), or any
// http in dev.
func checkRedirectURI(raw string, dev bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if dev || h == "127.0.0.1" || h == "::1" || h == "localhost" {
			return nil
		}
		return fmt.Errorf("must use https (http only for loopback hosts)")
	}
	return fmt.Errorf("scheme %q is not allowed", u.Scheme)
}

// NewClientSecret returns a fresh client secret with 256 bits of entropy.
func NewClientSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashClientSecret returns what storage keeps of a client secret.
func HashClientSecret(systemSecret []byte, secret string) []byte {
	h, _ := NewSecretHasher(systemSecret).Hash(context.Background(), []byte(secret))
	return h
}
