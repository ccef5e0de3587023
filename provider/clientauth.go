package provider

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// authenticateClient is fosite's client authentication with the rules it
// leaves out for clients that are not OpenID Connect "advanced" clients:
// a request uses exactly one authentication method (RFC 6749 §2.3), and it
// is the client's registered token_endpoint_auth_method (RFC 7591 §2).
// A public client may send its client_id in HTTP Basic with an empty
// password, which is no authentication at all and so counts as "none".
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	id, secret, basic := r.BasicAuth()
	_, inForm := form["client_secret"]
	_, assertion := form["client_assertion"]
	switch {
	case assertion:
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication with client_assertion (private_key_jwt) is not supported.")
	case basic && inForm:
		return nil, fosite.ErrInvalidRequest.WithHint("The client authenticated with both HTTP Basic and client_secret in the body; use exactly one method (RFC 6749 §2.3).")
	case basic && form.Get("client_id") != "":
		if bid, err := url.QueryUnescape(id); err == nil && bid != form.Get("client_id") {
			return nil, fosite.ErrInvalidRequest.WithHint("The client_id in the body differs from the one in HTTP Basic.")
		}
	}
	client, err := p.oauth2.DefaultClientAuthenticationStrategy(ctx, r, form)
	if err != nil {
		return nil, err
	}
	used := storage.AuthMethodNone
	switch {
	case basic && secret != "":
		used = storage.AuthMethodBasic
	case inForm:
		used = storage.AuthMethodPost
	}
	registered := storage.AuthMethodBasic
	if c, ok := client.(*storage.Client); ok && c.TokenEndpointAuthMethod != "" {
		registered = c.TokenEndpointAuthMethod
	}
	if used != registered {
		return nil, fosite.ErrInvalidClient.WithHintf("The client is registered to authenticate with %s, not %s.", registered, used)
	}
	return client, nil
}

// requestClientID names the client a token-endpoint style request (token,
// PAR, revocation, introspection) comes from, before it is authenticated:
// the HTTP Basic user when there is one (RFC 6749 §2.3.1, form-encoded),
// else the client_id of the body. A body client_id that names another
// client than Basic is refused: one request, one client, so limits keyed
// on the client (the WeChat grant's) cannot be spent on somebody else's.
func requestClientID(r *http.Request) (string, error) {
	body := r.PostForm.Get("client_id")
	user, _, ok := r.BasicAuth()
	if !ok {
		return body, nil
	}
	id, err := url.QueryUnescape(user)
	if err != nil {
		return "", fosite.ErrInvalidRequest.WithHint("The client id in the Authorization header is not form-encoded (RFC 6749 section 2.3.1).")
	}
	if body != "" && body != id {
		return "", fosite.ErrInvalidRequest.WithHint("The client_id in the body differs from the one in HTTP Basic.")
	}
	return id, nil
}
