// Package admin implements wxoidc's admin API, an http.Handler meant for a
// listener of its own: CRUD of OAuth 2.0 clients under /admin/clients, with
// RFC 7591 metadata names plus wechat_appid and skip_consent, and the
// signing-key list and rotation under /admin/keys.
//
// Client secrets are generated here, returned once (in the response that
// created or rotated them) and stored only as their keyed hash; a client
// document read back never carries one. Validation errors are RFC 7591
// §3.2.2 JSON errors (invalid_client_metadata, invalid_redirect_uri).
//
// The package authenticates requests with one bearer token. It does not
// choose the listener or decide whether running without a token is safe;
// package main does (loopback only).
package admin
