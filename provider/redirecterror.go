package provider

import (
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// ErrorRedirect is where an authorization error response goes (RFC 6749
// §4.1.2.1): the client's redirect URI, which MUST have been checked
// against the client's registration (an error is never sent to an
// unverified URI), and how the client asked for the response.
type ErrorRedirect struct {
	RedirectURI *url.URL
	// ResponseMode is form_post (OAuth 2.0 Form Post Response Mode) or
	// else query: the modes discovery offers (response_modes_supported).
	// Any other mode, fragment included (fosite sets it on some refused
	// requests), is not offered, so the error goes in the query.
	ResponseMode fosite.ResponseModeType
	// State is the request's state, returned as it came; empty for none.
	State string
	// Issuer is returned as iss (RFC 9207).
	Issuer string
}

// WriteErrorRedirect sends rfc to the client at to: error and
// error_description (fosite's debug text too when exposeDebug is set,
// which only dev does), state and iss, in the query or an auto-submitting
// form as to.ResponseMode says, with 303 See Other. The
// answer is never cached. It is the one writer of authorization errors to
// a client: the authorization endpoint and the login step both use it.
func WriteErrorRedirect(w http.ResponseWriter, to ErrorRedirect, rfc *fosite.RFC6749Error, exposeDebug bool) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	target, form := ErrorRedirectTarget(to, rfc, exposeDebug)
	if form != nil {
		h.Set("Content-Type", "text/html;charset=UTF-8")
		fosite.WriteAuthorizeFormPostResponse(target, form, fosite.DefaultFormPostTemplate, w)
		return
	}
	h.Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// ErrorRedirectTarget is what WriteErrorRedirect sends: the URL to
// redirect to, or, for form_post, the URL and the form to post to it. A
// page that lets the person go back to the client (a link or a button)
// uses it.
func ErrorRedirectTarget(to ErrorRedirect, rfc *fosite.RFC6749Error, exposeDebug bool) (target string, form url.Values) {
	params := rfc.WithExposeDebug(exposeDebug).ToValues()
	if to.State != "" {
		params.Set("state", to.State)
	}
	params.Set("iss", to.Issuer)
	u := *to.RedirectURI
	u.Fragment = "" // a redirect URI has none (RFC 6749 §3.1.2)
	if to.ResponseMode == fosite.ResponseModeFormPost {
		return u.String(), params
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
