package provider

import (
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// authorizeParams are the parameters of an authorization request (RFC 6749
// §4.1.1, RFC 7636, OpenID Connect Core §3.1.2.1, RFC 8707, RFC 9126) that
// wxoidc reads, each with the most bytes a value may have. An authorization
// request is stored for minutes (a login state, a pushed request) on behalf
// of anyone who asks, so only these are kept and each is bounded: other
// parameters are dropped (OpenID Connect Core §3.1.2.1 says to ignore
// them) and an over-long value is refused. Together they bound a stored
// request to a few KiB.
//
// request and registration are kept so that fosite refuses them
// (request_not_supported, registration_not_supported) rather than have
// them silently ignored.
var authorizeParams = map[string]int{
	"response_type":         64,
	"client_id":             maxClientIDBytes,
	"redirect_uri":          2048,
	"scope":                 1024,
	"state":                 1024,
	"nonce":                 512,
	"code_challenge":        128, // RFC 7636 §4.2: 43 to 128 characters
	"code_challenge_method": 16,
	"response_mode":         32,
	"prompt":                64,
	"max_age":               10,
	"display":               16,
	"ui_locales":            128,
	"claims_locales":        128,
	"login_hint":            256,
	"acr_values":            256,
	"id_token_hint":         4096,
	"request_uri":           512,
	"request":               maxParamBytes,
	"registration":          maxParamBytes,
	"audience":              512, // repeatable; see maxRepeats
	"resource":              512,
}

// clientAuthParams authenticate the client at the PAR endpoint (RFC 9126
// §2.1); fosite needs them, storage never sees them.
var clientAuthParams = map[string]int{
	"client_secret":         256,
	"client_assertion":      maxParamBytes,
	"client_assertion_type": 128,
}

// maxRepeats bounds how often a repeatable parameter (audience, resource)
// may appear.
const maxRepeats = 8

// maxClientIDBytes is the longest client id the provider accepts.
const maxClientIDBytes = 128

// normalizeAuthorizeForm reduces form, an authorization request's
// parameters as parseForm left them, to authorizeParams (and, for PAR,
// clientAuthParams), refusing any value over its limit.
func normalizeAuthorizeForm(form url.Values, par bool) error {
	for k, vs := range form {
		limit, ok := authorizeParams[k]
		if !ok && par {
			limit, ok = clientAuthParams[k]
		}
		if !ok {
			delete(form, k)
			continue
		}
		if len(vs) > maxRepeats {
			return fosite.ErrInvalidRequest.WithHintf("The request parameter '%s' is repeated more than %d times.", k, maxRepeats)
		}
		for _, v := range vs {
			if len(v) > limit {
				return fosite.ErrInvalidRequest.WithHintf("The request parameter '%s' is longer than %d bytes.", k, limit)
			}
		}
	}
	return nil
}

// parseAuthorizeForm is parseForm for the authorization and PAR endpoints:
// it also normalises the parameters (normalizeAuthorizeForm). r.PostForm
// is left alone (fosite reads r.Form).
func parseAuthorizeForm(w http.ResponseWriter, r *http.Request, par bool) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	return normalizeAuthorizeForm(r.Form, par)
}

// dropClientAuth removes client credentials from a pushed request's form
// before fosite stores it: a client secret or assertion must not sit in the
// database beside the request.
func dropClientAuth(form url.Values) {
	for k := range clientAuthParams {
		delete(form, k)
	}
}
