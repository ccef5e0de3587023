package provider

import (
	"fmt"
	"net/http"
	"strings"
)

// bearerToken returns the access token of a protected-resource request
// parsed by parseForm: from the Authorization header (RFC 6750 §2.1) or,
// for a POST, from the form body (§2.2). A token in the query string
// (§2.3) ends up in access logs, browser history and Referer headers, so it
// is refused, as is a token sent by more than one method (§2). On failure
// desc says why, for an invalid_request answer.
func bearerToken(r *http.Request) (token, desc string) {
	if r.URL.Query().Has("access_token") {
		return "", "Send the access token in the Authorization header (or, with POST, the form body), never in the query string (RFC 6750, section 2.3)."
	}
	header := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			header = strings.TrimSpace(value)
		}
	}
	var body string
	if r.Method == http.MethodPost {
		body = r.PostForm.Get("access_token")
	}
	if header != "" && body != "" {
		return "", "The access token must be sent by one method only (RFC 6750, section 2)."
	}
	if header != "" {
		return header, ""
	}
	return body, ""
}

// bearerChallenge is the WWW-Authenticate value of a protected-resource
// error (RFC 6750 §3); scope, when set, names the scope the request needs
// (§3.1 insufficient_scope).
func (p *Provider) bearerChallenge(code, desc, scope string) string {
	v := fmt.Sprintf(`Bearer realm=%q`, p.cfg.Issuer)
	if code != "" {
		v += fmt.Sprintf(`, error=%q, error_description=%q`, code, desc)
	}
	if scope != "" {
		v += fmt.Sprintf(`, scope=%q`, scope)
	}
	return v
}
