package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// GrantTypeDeviceCode is the device authorization grant (RFC 8628 §3.4).
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Device flow defaults (Config.DeviceCodeLifespan, Config.DevicePollInterval).
const (
	DefaultDeviceCodeLifespan = 10 * time.Minute
	DefaultDevicePollInterval = 5 * time.Second
)

// PathDevice is the verification URI (SPEC §11), served by the browser
// login step (package weblogin).
const PathDevice = "/device"

// DeviceKind is the storage.DeviceAuth kind of an RFC 8628 authorization.
const DeviceKind = "device"

// AMRMiniProgram is the amr value of an authorization approved in a Mini
// Program, after "wechat".
const AMRMiniProgram = "miniprogram"

// deviceError is an RFC 8628 §3.5 error, answered with HTTP 400 like every
// token error (RFC 6749 §5.2). A fresh value each time: fosite's error
// values must not be shared and changed.
func deviceError(code, description string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: code, DescriptionField: description, CodeField: http.StatusBadRequest}
}

func errAuthorizationPending() *fosite.RFC6749Error {
	return deviceError("authorization_pending", "The authorization request is still pending: the person has not approved or denied it yet.")
}

func errSlowDown() *fosite.RFC6749Error {
	return deviceError("slow_down", "The authorization request is still pending, and the client polls too fast: the interval has grown by 5 seconds for this and every later request.")
}

func errExpiredToken() *fosite.RFC6749Error {
	return deviceError("expired_token", "The device_code has expired; start a new device authorization.")
}

func errDeviceDenied() *fosite.RFC6749Error {
	return deviceError("access_denied", "The person denied the authorization request.")
}

// handleDeviceAuthorize serves POST /oauth2/device/authorize (RFC 8628
// §3.1, §3.2).
func (p *Provider) handleDeviceAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(w, r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	client, err := p.oauth2.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if !client.GetGrantTypes().Has(GrantTypeDeviceCode) {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the device authorization grant."))
		return
	}
	scopes := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
	strategy := p.fconf.GetScopeStrategy(ctx)
	for _, s := range scopes {
		if !strategy(client.GetScopes(), s) {
			p.writeTokenError(ctx, w, r, nil, fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", s))
			return
		}
	}
	now := p.cfg.Now().UTC()
	d := storage.DeviceAuth{
		DeviceCode: randomSecret(), Kind: DeviceKind, ClientID: client.GetID(), Scopes: scopes, Data: []byte{},
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.DeviceCodeLifespan), Interval: p.cfg.DevicePollInterval,
	}
	for range 3 { // a user code may be taken; draw again
		d.UserCode = storage.NewUserCode()
		if err = p.cfg.Storage.CreateDeviceAuth(ctx, d); !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
		return
	}
	userCode := storage.FormatUserCode(d.UserCode)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               d.DeviceCode,
		"user_code":                 userCode,
		"verification_uri":          p.url(PathDevice),
		"verification_uri_complete": p.url(PathDevice) + "?" + url.Values{"user_code": {userCode}}.Encode(),
		"expires_in":                int(p.cfg.DeviceCodeLifespan / time.Second),
		"interval":                  int(p.cfg.DevicePollInterval / time.Second),
	})
}

// randomSecret returns 256 random bits, base64url-encoded.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// deviceGrant is the token endpoint's side of RFC 8628 (§3.4, §3.5): the
// device polls with its device_code; each poll is one storage statement,
// which also enforces the interval and redeems an approval exactly once.
type deviceGrant struct {
	p      *Provider
	tokens *tokenIssuer
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

// CanSkipClientAuth implements fosite.TokenEndpointHandler: public
// clients identify themselves with client_id (RFC 8628 §3.4).
func (g *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (g *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(GrantTypeDeviceCode)
}

// HandleTokenEndpointRequest polls the authorization and, once it is
// approved, prepares the session of the person who approved it.
func (g *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	ar.SetID(newRequestID())
	client := ar.GetClient()
	if !client.GetGrantTypes().Has(GrantTypeDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the device authorization grant.")
	}
	code := ar.GetRequestForm().Get("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The 'device_code' parameter is missing.")
	}
	now := g.p.cfg.Now().UTC()
	d, out, err := g.p.cfg.Storage.PollDeviceAuth(ctx, code, client.GetID(), now)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The device_code is unknown, or was issued to another client.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	switch out {
	case storage.PollPending:
		return errAuthorizationPending()
	case storage.PollSlowDown:
		return errSlowDown().WithHintf("Wait at least %d seconds between polls.", int(d.Interval/time.Second))
	case storage.PollExpired:
		return errExpiredToken()
	case storage.PollDenied:
		return errDeviceDenied()
	case storage.PollUsed:
		return fosite.ErrInvalidGrant.WithHint("The device_code was already redeemed.")
	case storage.PollRedeemed:
	default:
		return fosite.ErrServerError.WithDebugf("unknown poll outcome %q", out)
	}
	if d.Kind != DeviceKind {
		return fosite.ErrInvalidGrant.WithHint("The code is not a device_code.")
	}
	user, err := g.p.cfg.Storage.User(ctx, d.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return errDeviceDenied().WithHint("The person who approved is no longer a user.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if user.Disabled {
		return errDisabled
	}
	for _, s := range d.Scopes { // checked against the client at authorization
		ar.GrantScope(s)
	}
	sess := newUserSession(g.p.cfg.Issuer, client, user.Subject, d.AuthTime, d.CreatedAt, idTokenAlg(client))
	sess.Claims.AuthenticationMethodsReferences = d.AMR
	claims, err := g.p.userClaims(ctx, user, client, ar.GetGrantedScopes(), "")
	if err != nil {
		return err
	}
	sess.setUserClaims(claims)
	sess.login = &storage.Login{
		Subject: user.Subject, At: now, ClientID: client.GetID(), IP: requestIPFrom(ctx),
		Details: map[string]any{"method": MethodDevice, "amr": strings.Join(d.AMR, " ")},
	}
	cfg := g.p.fconf
	sess.SetExpiresAt(fosite.AccessToken, now.Add(fosite.GetEffectiveLifespan(client, GrantTypeDeviceCode, fosite.AccessToken, cfg.GetAccessTokenLifespan(ctx))))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(fosite.GetEffectiveLifespan(client, GrantTypeDeviceCode, fosite.RefreshToken, cfg.GetRefreshTokenLifespan(ctx))))
	ar.SetSession(sess)
	return nil
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler.
func (g *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	// The login (last-login time, the login event) commits with the
	// tokens: no token for a user disabled meanwhile.
	sess := ar.GetSession().(*Session)
	var event storage.Event
	err := g.tokens.issue(ctx, ar, resp, GrantTypeDeviceCode, func(ctx context.Context) error {
		if l := sess.login; l != nil {
			event = loginEventOf(l)
			return g.p.cfg.Storage.RecordLogin(ctx, *l)
		}
		return nil
	})
	if err == nil && sess.login != nil {
		g.p.users.audit().logged(ctx, event)
	}
	return err
}
