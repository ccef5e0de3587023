// Package ops is what an operator sees of a running provider: the health
// endpoints (/healthz, /readyz), Prometheus metrics, and the middleware that
// writes one log line per request with a request id.
//
// It observes; it does not serve the protocol (see package provider) or
// administer clients and keys (see package admin). Metrics live in a
// registry the caller passes in; nothing here is global. Log lines and
// metric labels carry route templates, never raw URLs, and never a secret,
// code or token.
package ops
