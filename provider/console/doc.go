// Package console is wxoidc's admin console: a web UI, served on the admin
// listener under /console/, for the people who run the provider — apps
// (OAuth 2.0 clients), signing keys, users and the audit trail.
//
// Every read and every change goes through the admin API (package admin),
// called in process with the admin token: the console adds no power the API
// lacks, and every change it makes is recorded, with the operator's name,
// where the API records changes (admin.WithOperator).
//
// # Who gets in
//
// Operators sign in with WeChat through wxoidc itself: the console is an
// OpenID Connect client of its own issuer (authorization-code flow with
// PKCE; a public, first-party client, so no secret exists to leak; the code
// is exchanged server-side). Only users whose roles include "admin" (every
// action) or "viewer" (read-only: every change is refused on the server)
// get in, and the role is checked again on every request, so revoking it or
// disabling the user takes effect at once. The admin token is the
// break-glass sign-in.
//
// Sessions are sealed cookies (AES-GCM under a key derived from the system
// secret): any replica can read them, nothing is kept in process memory.
// They are HttpOnly, SameSite=Strict, scoped to /console/ and expire.
// Every form carries a CSRF token bound to the browser.
//
// Pages are html/template, embedded, in Chinese (zh-CN) and English after
// Accept-Language, with a switch; every action works without JavaScript.
//
// The package does not choose the listener or register its OAuth client;
// package main does both.
package console
