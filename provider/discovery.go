package provider

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// GrantTypeWeChat is the Mini Program's extension grant (SPEC §4).
const GrantTypeWeChat = "urn:wxoidc:params:oauth:grant-type:wechat-jscode"

// discoveryCacheAge is how long clients may cache discovery and the JWKS.
// It is well under the keys' publish delay, so a relying party always sees
// a new key before the first token it signs.
const discoveryCacheAge = 300

// discoveryDocument builds the OpenID Provider Metadata (OpenID Connect
// Discovery 1.0 §3, RFC 8414 §2). It lists only what wxoidc honours.
func (p *Provider) discoveryDocument() ([]byte, error) {
	doc := struct {
		Issuer                                     string   `json:"issuer"`
		AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
		TokenEndpoint                              string   `json:"token_endpoint"`
		UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
		JWKSURI                                    string   `json:"jwks_uri"`
		RevocationEndpoint                         string   `json:"revocation_endpoint"`
		IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
		PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
		DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint"`
		RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
		RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
		EndSessionEndpoint                         string   `json:"end_session_endpoint"`
		ScopesSupported                            []string `json:"scopes_supported"`
		ResponseTypesSupported                     []string `json:"response_types_supported"`
		ResponseModesSupported                     []string `json:"response_modes_supported"`
		GrantTypesSupported                        []string `json:"grant_types_supported"`
		SubjectTypesSupported                      []string `json:"subject_types_supported"`
		IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
		TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
		RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
		IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
		CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
		ClaimsSupported                            []string `json:"claims_supported"`
		ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
		RequestParameterSupported                  bool     `json:"request_parameter_supported"`
		RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
		RequireRequestURIRegistration              bool     `json:"require_request_uri_registration"`
		RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
		AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
		FrontchannelLogoutSupported                bool     `json:"frontchannel_logout_supported"`
		BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
		BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
		UILocalesSupported                         []string `json:"ui_locales_supported"`
	}{
		Issuer:                                    p.cfg.Issuer,
		AuthorizationEndpoint:                     p.url(pathAuthorize),
		TokenEndpoint:                             p.url(pathToken),
		UserinfoEndpoint:                          p.url(pathUserinfo),
		JWKSURI:                                   p.url(pathJWKS),
		RevocationEndpoint:                        p.url(pathRevoke),
		IntrospectionEndpoint:                     p.url(pathIntrospect),
		PushedAuthorizationRequestEndpoint:        p.url(pathPAR),
		DeviceAuthorizationEndpoint:               p.url(pathDeviceAuthorize),
		EndSessionEndpoint:                        p.url(pathLogout),
		ScopesSupported:                           KnownScopes,
		ResponseTypesSupported:                    []string{"code"},
		ResponseModesSupported:                    []string{"query", "form_post"},
		GrantTypesSupported:                       []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeWeChat, GrantTypeDeviceCode},
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          p.cfg.Keys.Algorithms(),
		TokenEndpointAuthMethodsSupported:         []string{"client_secret_basic", "client_secret_post", "none"},
		RevocationEndpointAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:             []string{"S256"},
		ClaimsSupported: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "sid",
			"name", "picture", "phone_number", "phone_number_verified", "wechat_openid", "wechat_unionid",
		},
		RequestParameterSupported:                  true,
		RequestURIParameterSupported:               true,
		RequireRequestURIRegistration:              true,
		RequestObjectSigningAlgValuesSupported:     append(slices.Clone(requestObjectAlgs), "none"),
		AuthorizationResponseIssParameterSupported: true,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		UILocalesSupported:                         []string{"zh-CN", "en"},
	}
	if p.cfg.Registration.Enabled {
		doc.RegistrationEndpoint = p.url(pathRegister)
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeCacheable(w, p.discovery)
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeCacheable(w, p.cfg.Keys.JWKS())
}

// writeCacheable writes prepared JSON that any client may cache and any
// origin may read.
func writeCacheable(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = cacheControl
	h["Access-Control-Allow-Origin"] = anyOrigin
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
}

// Prepared header values (canonical keys, assigned without allocation).
var (
	jsonContentType = []string{"application/json"}
	cacheControl    = []string{"public, max-age=" + strconv.Itoa(discoveryCacheAge)}
	anyOrigin       = []string{"*"}
)
