package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// requestObjectAlgs are the JWS algorithms a signed request object may use
// (request_object_signing_alg_values_supported, besides "none").
var requestObjectAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Limits on what the provider fetches for a request object.
const (
	maxFetchedBytes   = 64 << 10
	requestObjectSkew = time.Minute
)

// parRequestURIPrefix starts every request_uri the PAR endpoint issues.
const parRequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// parseClientJWKS decodes a client's key set and refuses private keys.
func parseClientJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set")
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("holds no key")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("must hold public keys only")
		}
		if !k.Valid() {
			return nil, fmt.Errorf("holds an invalid key")
		}
	}
	return &set, nil
}

// expandRequestObject resolves an OpenID Connect request object (Core §6):
// the object passed by value (request) or by a registered reference
// (request_uri; PAR's own URNs are left to fosite) is verified with the
// client's keys and its parameters are merged into r.Form, superseding the
// OAuth 2.0 parameters of the same name (§6.3.3). Afterwards the form holds
// no request or request_uri, so fosite sees a plain authorization request.
// par is set at the PAR endpoint, where request_uri is not allowed (RFC 9126
// §2.1).
func (p *Provider) expandRequestObject(ctx context.Context, r *http.Request, par bool) error {
	obj, ref := r.Form.Get("request"), r.Form.Get("request_uri")
	switch {
	case obj == "" && ref == "":
		return nil
	case obj != "" && ref != "":
		return fosite.ErrInvalidRequest.WithHint("The parameters 'request' and 'request_uri' must not both be used.")
	case ref != "" && par:
		return fosite.ErrInvalidRequest.WithHint("A pushed authorization request must not carry 'request_uri' (RFC 9126 §2.1).")
	case ref != "" && strings.HasPrefix(ref, parRequestURIPrefix):
		return nil // a pushed request: fosite loads it
	}
	fc, err := p.cfg.Storage.GetClient(ctx, r.Form.Get("client_id"))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fosite.ErrInvalidClient.WithHint("The requested OAuth 2.0 Client does not exist.")
		}
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	client := fc.(*storage.Client)
	if ref != "" {
		if !slices.Contains(client.RequestURIs, ref) {
			return fosite.ErrInvalidRequestURI.WithHint("The request_uri is not one of the client's registered request_uris.")
		}
		b, _, err := p.fetch(ctx, ref, "application/oauth-authz-req+jwt, application/jwt")
		if err != nil {
			return fosite.ErrInvalidRequestURI.WithHintf("The request object could not be fetched from the request_uri: %s.", err)
		}
		obj = strings.TrimSpace(string(b))
	}
	claims, err := p.verifyRequestObject(ctx, client, obj)
	if err != nil {
		return err
	}
	return mergeRequestObject(r, claims)
}

// verifyRequestObject checks the request object's signature (or its
// absence, for a client registered with "none") and its JWT claims, and
// returns its claims.
func (p *Provider) verifyRequestObject(ctx context.Context, client *storage.Client, obj string) (map[string]any, error) {
	parts := strings.Split(obj, ".")
	if len(parts) != 3 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a compact JWS (encrypted request objects are not supported).")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's header cannot be decoded.")
	}
	want := client.RequestObjectSigningAlg
	if want != "" && header.Alg != want {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The client's request objects must use alg %s, not %s.", want, header.Alg)
	}
	var payload []byte
	if header.Alg == "none" {
		if want != "none" {
			return nil, fosite.ErrInvalidRequestObject.WithHint("Unsigned request objects are accepted only from clients registered with request_object_signing_alg none.")
		}
		if parts[2] != "" {
			return nil, fosite.ErrInvalidRequestObject.WithHint("An unsigned request object must have an empty signature.")
		}
		if payload, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload cannot be decoded.")
		}
	} else {
		if !slices.Contains(requestObjectAlgs, header.Alg) {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's alg %q is not supported.", header.Alg)
		}
		jws, err := jose.ParseSigned(obj, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(header.Alg)})
		if err != nil || len(jws.Signatures) != 1 {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a valid JWS.")
		}
		keys, err := p.clientKeys(ctx, client, jws.Signatures[0].Header.KeyID)
		if err != nil {
			return nil, err
		}
		payload, err = verifyWithAny(jws, keys)
		if err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's signature does not verify with the client's registered keys.")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload is not a JSON object.")
	}
	if err := p.checkRequestObjectClaims(client, claims, p.cfg.Now()); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkRequestObjectClaims applies OpenID Connect Core §6.1 and RFC 9101
// §6.3: iss is the client, aud names this issuer, the object has not expired
// and is already valid, and it does not nest another request.
func (p *Provider) checkRequestObjectClaims(client *storage.Client, c map[string]any, now time.Time) error {
	bad := func(hint string) error { return fosite.ErrInvalidRequestObject.WithHint(hint) }
	if v, ok := c["iss"]; ok && v != client.ID {
		return bad("The request object's iss must be the client_id.")
	}
	if v, ok := c["client_id"]; ok && v != client.ID {
		return bad("The request object's client_id differs from the request's.")
	}
	if v, ok := c["aud"]; ok {
		var auds []any
		switch a := v.(type) {
		case string:
			auds = []any{a}
		case []any:
			auds = a
		}
		if !slices.Contains(auds, any(p.cfg.Issuer)) {
			return bad("The request object's aud must name this provider's issuer.")
		}
	}
	if exp, ok := numericDate(c["exp"]); ok && !now.Before(exp.Add(requestObjectSkew)) {
		return bad("The request object has expired.")
	} else if c["exp"] != nil && !ok {
		return bad("The request object's exp is not a number.")
	}
	if nbf, ok := numericDate(c["nbf"]); ok && now.Add(requestObjectSkew).Before(nbf) {
		return bad("The request object is not valid yet (nbf).")
	}
	if _, ok := c["request"]; ok {
		return bad("A request object must not contain 'request'.")
	}
	if _, ok := c["request_uri"]; ok {
		return bad("A request object must not contain 'request_uri'.")
	}
	return nil
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// jwtOnlyClaims are JWT claims of a request object that are not
// authorization request parameters.
var jwtOnlyClaims = map[string]bool{"iss": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// mergeRequestObject puts the request object's parameters into r.Form
// (OpenID Connect Core §6.3.3: they supersede the OAuth 2.0 ones) and drops
// request and request_uri. response_type must agree with the OAuth 2.0
// parameter, which OAuth requires (§6.1).
func mergeRequestObject(r *http.Request, claims map[string]any) error {
	if rt, ok := claims["response_type"].(string); ok && r.Form.Get("response_type") != "" && rt != r.Form.Get("response_type") {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's response_type differs from the request's.")
	}
	for k, v := range claims {
		if jwtOnlyClaims[k] {
			continue
		}
		vals, err := paramValues(k, v)
		if err != nil {
			return err
		}
		r.Form[k] = vals
	}
	for _, k := range []string{"request", "request_uri"} {
		r.Form.Del(k)
		if r.PostForm != nil {
			r.PostForm.Del(k)
		}
	}
	return nil
}

// paramValues is the form value(s) of a request object claim: strings as
// they are, numbers and booleans in their JSON spelling, arrays of strings
// as repeated values where a parameter may repeat, objects (claims) as JSON.
func paramValues(k string, v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case json.Number:
		return []string{t.String()}, nil
	case bool:
		return []string{strconv.FormatBool(t)}, nil
	case []any:
		if repeatable[k] {
			out := make([]string, 0, len(t))
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %s must be strings.", k)
				}
				out = append(out, s)
			}
			return out, nil
		}
	case nil:
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %s is null.", k)
	}
	b, _ := json.Marshal(v)
	return []string{string(b)}, nil
}

// verifyWithAny verifies jws with the key its kid names, or with every
// signing key of the set when it names none.
func verifyWithAny(jws *jose.JSONWebSignature, set *jose.JSONWebKeySet) ([]byte, error) {
	kid := jws.Signatures[0].Header.KeyID
	for _, k := range set.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if payload, err := jws.Verify(k.Public()); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("no key verifies the signature")
}

// clientKeys returns the client's registered public keys for verifying a
// signature whose header names kid: jwks, or what its jwks_uri serves
// (through the provider's jwksCache).
func (p *Provider) clientKeys(ctx context.Context, client *storage.Client, kid string) (*jose.JSONWebKeySet, error) {
	if len(client.JWKS) > 0 {
		set, err := parseClientJWKS(client.JWKS)
		if err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The client's key set %s.", err)
		}
		return set, nil
	}
	if client.JWKSURI == "" {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The client has no registered keys (jwks or jwks_uri) to verify a signed request object.")
	}
	set, err := p.clientJWKS.keys(ctx, client.JWKSURI, kid)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The client's key set could not be obtained from its jwks_uri: %s.", err)
	}
	return set, nil
}

// fetch GETs a URI the client registered, if checkServerURI allows it,
// with the outbound client (time limits, no redirects followed) and a size
// limit; only 200 counts. Its errors say what went wrong in words fit for
// the client, never the URI.
func (p *Provider) fetch(ctx context.Context, uri, accept string) ([]byte, http.Header, error) {
	if err := checkServerURI(uri, p.cfg.Dev); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, errors.New("invalid URL")
	}
	req.Header.Set("Accept", accept)
	resp, err := p.outbound.Do(req)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, nil, errors.New("the server did not answer in time")
		}
		return nil, nil, errors.New("the server did not answer")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, nil, fmt.Errorf("HTTP status %d: redirects are not followed", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchedBytes+1))
	if err != nil {
		return nil, nil, errors.New("the answer could not be read")
	}
	if len(b) > maxFetchedBytes {
		return nil, nil, fmt.Errorf("the answer is larger than %d bytes", maxFetchedBytes)
	}
	return b, resp.Header, nil
}

// newOutboundClient is the HTTP client for calls the provider makes to
// clients' registered URIs: short timeouts, redirects never followed.
func newOutboundClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: 5 * time.Second}
	if base != nil {
		cp := *base
		c = &cp
		if c.Timeout == 0 {
			c.Timeout = 5 * time.Second
		}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}
