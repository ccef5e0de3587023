package provider

import (
	"net/http"
	"strings"
)

// pageCSP is the Content-Security-Policy of the provider's HTML pages:
// nothing loads but inline styles and images, no page can be framed
// (frame-ancestors), and no <base> can redirect relative URLs.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'none'; base-uri 'none'"

// PageHeaders sets the security headers of an HTML page the provider
// serves. Every page writer calls it — login, consent, logout, device
// verification, the admin console — so that they cannot drift apart:
//
//   - Content-Security-Policy: pageCSP, plus the directives in extra
//     (e.g. "script-src 'self'" for a page that runs the provider's own
//     script);
//   - X-Frame-Options: DENY (frame-ancestors for older browsers): no
//     clickjacking of sign-in, consent or sign-out;
//   - Referrer-Policy: no-referrer: codes and states in URLs do not leak
//     to other sites;
//   - X-Content-Type-Options: nosniff;
//   - Cache-Control: no-store (and Pragma: no-cache): pages carry
//     per-person data and CSRF tokens.
//
// Strict-Transport-Security is not a page's business: wxoidc serve sends it
// on every response when it terminates TLS itself, and a TLS-terminating
// proxy must send it otherwise (docs/security.md).
func PageHeaders(h http.Header, extra ...string) {
	csp := pageCSP
	if len(extra) > 0 {
		csp += "; " + strings.Join(extra, "; ")
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}
