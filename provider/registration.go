package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Paths of Dynamic Client Registration: the client registration endpoint
// (RFC 7591 §3) and each client's configuration endpoint (RFC 7592 §2),
// which registration_client_uri names.
const (
	pathRegister       = "/oauth2/register"
	pathRegisterClient = "/oauth2/register/{client_id}"
)

// DefaultRegistrationLimitPerIP is the default per-IP limit of the
// registration endpoints, per replica: registrations are rare, so a burst
// of 20 and one a second on average is plenty for a developer, and bounds
// what a leaked initial access token can be used to try.
var DefaultRegistrationLimitPerIP = RateLimit{Rate: 1, Burst: 20}

// maxRegistrationBody bounds a client metadata document (a jwks included).
const maxRegistrationBody = 64 << 10

// RegistrationConfig configures Dynamic Client Registration (RFC 7591) and
// its management protocol (RFC 7592).
type RegistrationConfig struct {
	// Enabled serves POST /oauth2/register and GET/PUT/DELETE
	// /oauth2/register/{client_id}, and lists registration_endpoint in
	// discovery. Off by default. Every registration needs an initial
	// access token that an operator issued (admin API).
	Enabled bool
	// LimitPerIP rate-limits the registration endpoints per client address
	// on this replica (HTTP 429); zero takes DefaultRegistrationLimitPerIP,
	// a negative Rate turns it off.
	LimitPerIP RateLimit
}

// RegistrationTokens makes and hashes the bearer tokens of Dynamic Client
// Registration: initial access tokens (RFC 7591 §3) and registration
// access tokens (RFC 7592 §3). Storage keeps only their hashes. Safe for
// concurrent use.
type RegistrationTokens struct {
	key []byte // HMAC key derived from the system secret; read-only
}

// NewRegistrationTokens returns the token maker keyed from the system
// secret.
func NewRegistrationTokens(systemSecret []byte) *RegistrationTokens {
	return &RegistrationTokens{key: keys.DeriveKey(systemSecret, keys.PurposeRegistrationTokens, 32)}
}

// New returns a fresh token (256 random bits, base64url) and its hash.
func (t *RegistrationTokens) New() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, t.Hash(token)
}

// Hash returns the keyed hash (HMAC-SHA256) that storage keeps of token.
func (t *RegistrationTokens) Hash(token string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(token))
	return m.Sum(nil)
}

// registrationRequest is what a client may register about itself
// (RFC 7591 §2): ClientMetadata without the fields only an operator sets
// (wechat_appid, skip_consent, audience), which a registration request
// cannot set and a PUT cannot change. Members wxoidc does not know —
// logo_uri, contacts, software_statement and the like — are ignored, not
// stored and not echoed (RFC 7591 §2, §3.1). client_id and client_secret
// are read only to be checked in an update (RFC 7592 §2.2).
type registrationRequest struct {
	ClientID                         string     `json:"client_id"`
	ClientSecret                     string     `json:"client_secret"`
	ClientName                       string     `json:"client_name"`
	RedirectURIs                     []string   `json:"redirect_uris"`
	PostLogoutRedirectURIs           []string   `json:"post_logout_redirect_uris"`
	GrantTypes                       []string   `json:"grant_types"`
	ResponseTypes                    []string   `json:"response_types"`
	Scope                            string     `json:"scope"`
	TokenEndpointAuthMethod          string     `json:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg         string     `json:"id_token_signed_response_alg"`
	JWKS                             JSONObject `json:"jwks"`
	JWKSURI                          string     `json:"jwks_uri"`
	RequestObjectSigningAlg          string     `json:"request_object_signing_alg"`
	RequestURIs                      []string   `json:"request_uris"`
	BackchannelLogoutURI             string     `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool       `json:"backchannel_logout_session_required"`
}

// metadata is the client document of q for the client id, keeping the
// operator's fields of old (nil for a new client). A client that asks for
// no scope gets openid.
func (q registrationRequest) metadata(id string, old *storage.Client) ClientMetadata {
	m := ClientMetadata{
		ClientID:                         id,
		ClientName:                       q.ClientName,
		RedirectURIs:                     q.RedirectURIs,
		PostLogoutRedirectURIs:           q.PostLogoutRedirectURIs,
		GrantTypes:                       q.GrantTypes,
		ResponseTypes:                    q.ResponseTypes,
		Scope:                            q.Scope,
		TokenEndpointAuthMethod:          q.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg:         q.IDTokenSignedResponseAlg,
		JWKS:                             q.JWKS,
		JWKSURI:                          q.JWKSURI,
		RequestObjectSigningAlg:          q.RequestObjectSigningAlg,
		RequestURIs:                      q.RequestURIs,
		BackchannelLogoutURI:             q.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: q.BackchannelLogoutSessionRequired,
	}
	if m.Scope == "" {
		// RFC 7591 §2 lets the server pick a default; without one the
		// client could not even ask for an ID token.
		m.Scope = ScopeOpenID
	}
	if old != nil {
		m.WeChatAppID, m.SkipConsent, m.Audience = old.WeChatAppID, old.SkipConsent, old.Audience
	}
	return m
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3): the registered metadata, client_id_issued_at,
// client_secret and client_secret_expires_at when a secret was issued, and
// the client configuration endpoint with its access token.
type registrationResponse struct {
	ClientMetadata
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`
}

// registrationError is an RFC 7591 §3.2.2 error (or, for a bad bearer
// token, an RFC 6750 §3.1 one).
type registrationError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// errRegistrationToken is the 401 of a missing, unknown, expired, used up
// or wrong initial or registration access token: one answer for all, so
// that none tells which tokens or clients exist.
var errRegistrationToken = errors.New("invalid registration token")

// handleRegister serves the client registration endpoint (RFC 7591 §3).
func (p *Provider) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !p.registrationPreamble(w, r) {
		return
	}
	ctx := r.Context()
	tok, ok := registrationBearer(r)
	if !ok {
		p.writeRegistrationUnauthorized(w, false, "An initial access token is required (Authorization: Bearer).")
		return
	}
	iatHash := p.regTokens.Hash(tok)
	iat, err := p.cfg.Storage.InitialAccessToken(ctx, iatHash)
	now := p.cfg.Now().UTC()
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && (iat.UsesLeft <= 0 || !now.Before(iat.ExpiresAt))):
		p.writeRegistrationUnauthorized(w, true, "The initial access token is unknown, expired, used up or revoked.")
		return
	case err != nil:
		p.registrationServerError(w, r, "look up initial access token", err)
		return
	}
	q, ok := p.decodeRegistration(w, r)
	if !ok {
		return
	}
	c, err := p.registeredMetadata(q.metadata(newRegisteredClientID(), nil), now)
	if err != nil {
		writeRegistrationClientError(w, err)
		return
	}
	var secret string
	if !c.IsPublic() {
		secret = NewClientSecret()
		c.SecretHash = HashClientSecret(p.cfg.Secret, secret)
	}
	rat, ratHash := p.regTokens.New()
	event := storage.Event{Type: storage.EventClientCreated, ClientID: c.ID, IP: clientIP(r),
		Details: map[string]any{"registration": "dynamic", "initial_access_token": iat.ID, "public": c.IsPublic()}}
	err = p.audit.RecordWith(ctx, func(ctx context.Context) error {
		return p.cfg.Storage.RegisterClient(ctx, storage.Registration{InitialTokenHash: iatHash, Client: c, TokenHash: ratHash, Now: now})
	}, event)
	switch {
	case errors.Is(err, storage.ErrNotFound): // used up by a parallel registration
		p.writeRegistrationUnauthorized(w, true, "The initial access token is unknown, expired, used up or revoked.")
		return
	case err != nil:
		p.registrationServerError(w, r, "register client", err)
		return
	}
	p.writeRegistration(w, http.StatusCreated, c, secret, rat)
}

// handleClientConfiguration serves a client's configuration endpoint
// (RFC 7592 §2): read, replace or delete the registration, authenticated
// by the client's registration access token.
func (p *Provider) handleClientConfiguration(w http.ResponseWriter, r *http.Request) {
	if !p.registrationPreamble(w, r) {
		return
	}
	c, rat, err := p.configurationClient(r)
	switch {
	case errors.Is(err, errRegistrationToken):
		_, sent := registrationBearer(r)
		p.writeRegistrationUnauthorized(w, sent, "The registration access token is missing or not valid for this client.")
		return
	case err != nil:
		p.registrationServerError(w, r, "look up client registration", err)
		return
	}
	switch r.Method {
	case http.MethodGet:
		p.writeRegistration(w, http.StatusOK, c, "", rat)
	case http.MethodPut:
		p.updateRegisteredClient(w, r, c, rat)
	case http.MethodDelete:
		err := p.audit.RecordWith(r.Context(), func(ctx context.Context) error {
			return p.cfg.Storage.DeleteClient(ctx, c.ID)
		}, storage.Event{Type: storage.EventClientDeleted, ClientID: c.ID, IP: clientIP(r), Details: map[string]any{"registration": "dynamic"}})
		switch {
		case errors.Is(err, storage.ErrNotFound): // deleted meanwhile
			p.writeRegistrationUnauthorized(w, true, "The registration access token is missing or not valid for this client.")
		case err != nil:
			p.registrationServerError(w, r, "delete client", err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// updateRegisteredClient answers a client update request (RFC 7592 §2.2):
// the body replaces the metadata (omitted fields take their defaults);
// client_id must be the client's, a client_secret, if sent, its current
// one. The secret and the registration access token stay (a client that
// becomes confidential gets a secret, shown once; one that becomes public
// loses it); fields only an operator sets are kept.
func (p *Provider) updateRegisteredClient(w http.ResponseWriter, r *http.Request, c storage.Client, rat string) {
	ctx := r.Context()
	q, ok := p.decodeRegistration(w, r)
	if !ok {
		return
	}
	if q.ClientID != c.ID {
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "client_id must be present and equal to this client's client_id (RFC 7592, section 2.2).")
		return
	}
	if q.ClientSecret != "" && p.fconf.ClientSecretsHasher.Compare(ctx, c.SecretHash, []byte(q.ClientSecret)) != nil {
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "client_secret does not match the client's current secret; leave it out or send the current one (a client cannot choose its secret).")
		return
	}
	fresh := NewClientSecret() // used only if the client becomes confidential
	var updated storage.Client
	var issued bool
	err := p.audit.RecordWith(ctx, func(ctx context.Context) error {
		return p.cfg.Storage.UpdateClient(ctx, c.ID, func(old storage.Client) (storage.Client, error) {
			n, err := p.registeredMetadata(q.metadata(c.ID, &old), old.CreatedAt)
			if err != nil {
				return storage.Client{}, err
			}
			n.UpdatedAt = p.cfg.Now().UTC()
			n.SecretHash, issued = old.SecretHash, false
			switch {
			case n.IsPublic():
				n.SecretHash = nil
			case len(n.SecretHash) == 0:
				n.SecretHash, issued = HashClientSecret(p.cfg.Secret, fresh), true
			}
			updated = n
			return n, nil
		})
	}, storage.Event{Type: storage.EventClientUpdated, ClientID: c.ID, IP: clientIP(r), Details: map[string]any{"registration": "dynamic"}})
	var ce *ClientError
	switch {
	case errors.As(err, &ce):
		writeRegistrationClientError(w, ce)
		return
	case errors.Is(err, storage.ErrNotFound): // deleted meanwhile
		p.writeRegistrationUnauthorized(w, true, "The registration access token is missing or not valid for this client.")
		return
	case err != nil:
		p.registrationServerError(w, r, "update client", err)
		return
	}
	secret := ""
	if issued {
		secret = fresh
	}
	p.writeRegistration(w, http.StatusOK, updated, secret, rat)
}

// registeredMetadata validates m with the admin API's rules
// (ClientMetadata.Check) and returns the client to store.
func (p *Provider) registeredMetadata(m ClientMetadata, now time.Time) (storage.Client, error) {
	return m.Check(p.cfg.Dev, now, p.cfg.Keys.Algorithms(), p.appKinds)
}

// configurationClient authenticates a request to a client's configuration
// endpoint: the client of the path, and the registration access token it
// presented. It fails with errRegistrationToken when the token is missing
// or wrong, or the client has no registration (registered by an operator,
// or deleted).
func (p *Provider) configurationClient(r *http.Request) (storage.Client, string, error) {
	ctx := r.Context()
	tok, ok := registrationBearer(r)
	id := mux.Vars(r)["client_id"]
	if !ok || id == "" {
		return storage.Client{}, "", errRegistrationToken
	}
	got := p.regTokens.Hash(tok)
	reg, err := p.cfg.Storage.ClientRegistration(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, "", errRegistrationToken
	case err != nil:
		return storage.Client{}, "", err
	}
	if !hmac.Equal(got, reg.TokenHash) {
		return storage.Client{}, "", errRegistrationToken
	}
	c, err := p.cfg.Storage.Client(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, "", errRegistrationToken
	case err != nil:
		return storage.Client{}, "", err
	}
	return c, tok, nil
}

// registrationPreamble applies what every registration request shares:
// no caching of answers that carry credentials, the rate limit, and a
// JSON body for POST and PUT. It reports whether to go on.
func (p *Provider) registrationPreamble(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if ok, wait := p.registrationLimits.Allow(r, p.cfg.Now()); !ok {
		retryAfterHeader(w, wait)
		writeRegistrationError(w, http.StatusTooManyRequests, errTooManyRequests.ErrorField, errTooManyRequests.DescriptionField)
		return false
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "The request body must be a JSON client metadata document (Content-Type: application/json).")
			return false
		}
	}
	return true
}

// registrationBearer returns the bearer token of the Authorization header,
// the only place RFC 7591 and RFC 7592 put it.
func registrationBearer(r *http.Request) (string, bool) {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	value = strings.TrimSpace(value)
	if !strings.EqualFold(scheme, "Bearer") || value == "" {
		return "", false
	}
	return value, true
}

// decodeRegistration reads a client metadata document: one JSON object of
// at most maxRegistrationBody bytes. Unknown members are ignored.
func (p *Provider) decodeRegistration(w http.ResponseWriter, r *http.Request) (registrationRequest, bool) {
	var q registrationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	err := dec.Decode(&q)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON document")
	}
	if err != nil {
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "The body is not a client metadata document: "+JSONProblem(err))
		return q, false
	}
	return q, true
}

// writeRegistration writes the client information response for c: its
// metadata, the new secret when one was issued (with
// client_secret_expires_at 0: it does not expire), and the registration
// access token rat with registration_client_uri.
func (p *Provider) writeRegistration(w http.ResponseWriter, status int, c storage.Client, secret, rat string) {
	out := registrationResponse{ClientMetadata: Metadata(c), RegistrationAccessToken: rat,
		RegistrationClientURI: p.url(pathRegister + "/" + url.PathEscape(c.ID))}
	if !c.IsPublic() {
		never := int64(0)
		out.ClientSecretExpiresAt = &never
	}
	out.ClientSecret = secret
	writeJSON(w, status, out)
}

// writeRegistrationUnauthorized answers 401 with an RFC 6750 §3 challenge:
// with error="invalid_token" when a token was sent, bare when none was.
func (p *Provider) writeRegistrationUnauthorized(w http.ResponseWriter, sent bool, desc string) {
	if sent {
		w.Header().Set("WWW-Authenticate", p.bearerChallenge("invalid_token", desc, ""))
	} else {
		w.Header().Set("WWW-Authenticate", p.bearerChallenge("", "", ""))
	}
	writeRegistrationError(w, http.StatusUnauthorized, "invalid_token", desc)
}

func writeRegistrationError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, registrationError{Error: code, Description: desc})
}

// writeRegistrationClientError answers a metadata validation failure with
// 400 invalid_redirect_uri or invalid_client_metadata (RFC 7591 §3.2.2).
func writeRegistrationClientError(w http.ResponseWriter, err error) {
	var ce *ClientError
	if errors.As(err, &ce) {
		writeRegistrationError(w, http.StatusBadRequest, ce.Code, ce.Description)
		return
	}
	writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "The client metadata is not valid.")
}

// registrationServerError logs err (once, here; it never holds a token)
// and answers 500 without details.
func (p *Provider) registrationServerError(w http.ResponseWriter, r *http.Request, what string, err error) {
	status, code := http.StatusInternalServerError, "server_error"
	if errors.Is(err, storage.ErrUnavailable) {
		status, code = http.StatusServiceUnavailable, "temporarily_unavailable"
		w.Header().Set("Retry-After", "1")
	}
	p.log.ErrorContext(r.Context(), "registration: "+what, "path", p.Route(r), "error", err)
	writeRegistrationError(w, status, code, "The request failed on the server; try again later.")
}

// newRegisteredClientID returns a random client id for a registered
// client (128 bits, base64url).
func newRegisteredClientID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// appKinds maps the provider's WeChat apps to their kinds, for
// CheckClientApp.
func appKinds(apps map[string]WeChatApp) map[string]wechat.AppKind {
	out := make(map[string]wechat.AppKind, len(apps))
	for id, a := range apps {
		out[id] = a.Kind
	}
	return out
}
