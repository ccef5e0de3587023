package weblogin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// pending is a login state: what a step needs to carry on. Stored as JSON.
type pending struct {
	// Step is stepLogin (on its way to /login), stepWeChat (at WeChat) or
	// stepConsent (on the consent page).
	Step string `json:"step"`
	// Params re-create the authorization request (URL-encoded).
	Params string `json:"params"`
	// ClientID, RedirectURI, State and ResponseMode let an error go back
	// to the client; RedirectURI was validated by fosite.
	ClientID     string `json:"client_id"`
	RedirectURI  string `json:"redirect_uri"`
	State        string `json:"state,omitempty"`
	ResponseMode string `json:"response_mode,omitempty"`
	// Binding is the hash of the browser-binding cookie.
	Binding string `json:"binding"`
	// Locale is the page language chosen at the start.
	Locale string `json:"locale"`
	// Kind and Scope are the WeChat flow of stepWeChat.
	Kind  wechat.AppKind `json:"kind,omitempty"`
	Scope string         `json:"scope,omitempty"`
	// Subject and Scopes are what stepConsent asks about.
	Subject string   `json:"subject,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	// QR is the official account's QR code a follow login waits on.
	QR *followQR `json:"qr,omitempty"`
	// Resume, when set, is where the browser goes once signed in (a path
	// and query below the issuer) instead of the authorization endpoint:
	// the device verification page signs people in this way.
	Resume string `json:"resume,omitempty"`
}

const (
	stepLogin   = "login"
	stepWeChat  = "wechat"
	stepConsent = "consent"
)

// authorizeURL is where the browser resumes the authorization request.
func (a *Authenticator) authorizeURL(p *pending) string {
	if p.Resume != "" {
		return a.url(p.Resume)
	}
	return a.url(pathAuthorize) + "?" + p.Params
}

// encodePending encodes p as JSON without HTML escaping: the URL-encoded
// parameters keep their '&' instead of \u0026, so that decodePending's
// fast path reads them (any JSON decoder reads both the same).
func encodePending(p *pending) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode login state: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodePending(b []byte) (*pending, error) {
	if p, ok := decodePendingFast(b); ok {
		return p, nil
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode login state: %w", err)
	}
	return &p, nil
}

// decodePendingFast decodes the common login state in one pass: a JSON
// object whose members all have string values without escapes, control
// characters or non-ASCII bytes, under pending's exact member names (the
// last of a repeated name wins, as in encoding/json). It reports false for
// anything else (scopes, qr, other names, escapes, null, malformed JSON),
// which json.Unmarshal then decodes; where it reports true, json.Unmarshal
// would decode the same pending.
func decodePendingFast(b []byte) (*pending, bool) {
	p := &pending{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return p, skipSpace(b, i+1) == len(b)
	}
	for {
		var key, value string
		var ok bool
		if key, i, ok = plainString(b, i); !ok {
			return nil, false
		}
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return nil, false
		}
		if value, i, ok = plainString(b, skipSpace(b, i+1)); !ok {
			return nil, false
		}
		switch key {
		case "step":
			p.Step = value
		case "params":
			p.Params = value
		case "client_id":
			p.ClientID = value
		case "redirect_uri":
			p.RedirectURI = value
		case "state":
			p.State = value
		case "response_mode":
			p.ResponseMode = value
		case "binding":
			p.Binding = value
		case "locale":
			p.Locale = value
		case "kind":
			p.Kind = wechat.AppKind(value)
		case "scope":
			p.Scope = value
		case "subject":
			p.Subject = value
		case "resume":
			p.Resume = value
		default:
			return nil, false
		}
		if i = skipSpace(b, i); i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return p, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// plainString reads the JSON string at b[i] if it has no escapes, control
// characters or non-ASCII bytes, and returns it and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", 0, false
		}
	}
	return "", 0, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// newPending fills what every step needs from ar.
func (a *Authenticator) newPending(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, step, drop string) *pending {
	p := &pending{
		Step:         step,
		Params:       resumeParams(ar, drop).Encode(),
		ClientID:     ar.GetClient().GetID(),
		State:        ar.GetState(),
		ResponseMode: string(ar.GetResponseMode()),
		Binding:      hashHex(a.binding(w, r)),
		Locale:       pickLocale(ar.GetRequestForm().Get("ui_locales"), r.Header.Get("Accept-Language")),
	}
	if u := ar.GetRedirectURI(); u != nil {
		p.RedirectURI = u.String()
	}
	return p
}

// save stores p under a new random ID and returns the ID.
func (a *Authenticator) save(ctx context.Context, p *pending) (string, error) {
	b, err := encodePending(p)
	if err != nil {
		return "", err
	}
	id := randomID(32)
	if err := a.cfg.Storage.CreateLoginState(ctx, id, b, a.now().Add(a.cfg.StateLifetime)); err != nil {
		return "", err
	}
	return id, nil
}

// errTooManyPending refuses a new sign-in over the pending caps; the
// client gets temporarily_unavailable (RFC 6749 §4.1.2.1).
var errTooManyPending = fosite.ErrTemporarilyUnavailable.WithHint("Too many sign-ins were started from this browser or network; wait a few minutes and try again.")

// admitSave stores p under a new random ID, as save does, if the browser
// of p, at r's address, may start one more sign-in (Config.PendingPerIP,
// PendingPerBrowser): the limits and the state are one storage step
// (storage.LoginStateStore.AdmitLoginState). ok is false over a cap. A
// step that replaces the state it consumed does not ask.
func (a *Authenticator) admitSave(r *http.Request, p *pending) (id string, ok bool, err error) {
	b, err := encodePending(p)
	if err != nil {
		return "", false, err
	}
	per := a.cfg.StateLifetime.Seconds()
	limits := make([]storage.RateTake, 0, 2)
	for _, c := range []struct {
		name string
		cap  int
	}{
		{"weblogin/pending/ip/" + provider.RequestAddrKey(r, a.cfg.IPv6Prefix), a.cfg.PendingPerIP},
		{"weblogin/pending/browser/" + p.Binding, a.cfg.PendingPerBrowser},
	} {
		if c.cap >= 0 {
			limits = append(limits, storage.RateTake{Name: c.name, Rate: float64(c.cap) / per, Burst: c.cap})
		}
	}
	now := a.now()
	id = randomID(32)
	ok, err = a.cfg.Storage.AdmitLoginState(r.Context(), id, b, now.Add(a.cfg.StateLifetime), limits, now)
	if err != nil || !ok {
		return "", false, err
	}
	return id, true, nil
}

// consume takes the login state id, checking that it is of the given step
// and belongs to this browser. The error is a page message key.
func (a *Authenticator) consume(ctx context.Context, r *http.Request, id, step string) (*pending, string, error) {
	if id == "" {
		return nil, "errNoState", nil
	}
	b, err := a.cfg.Storage.ConsumeLoginState(ctx, id)
	return a.checkConsumed(r, b, err, step)
}

// checkConsumed is consume's check of the login state b that a storage
// step consumed (with err).
func (a *Authenticator) checkConsumed(r *http.Request, b []byte, err error, step string) (*pending, string, error) {
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "errStateExpired", nil
	}
	if err != nil {
		return nil, "", err
	}
	p, err := decodePending(b)
	if err != nil {
		return nil, "", err
	}
	if p.Step != step {
		return nil, "errStateExpired", nil
	}
	if !a.boundTo(r, p.Binding) {
		return nil, "errOtherBrowser", nil
	}
	return p, "", nil
}
