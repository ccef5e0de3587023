package weblogin

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Paths of device verification (RFC 8628 §3.3, SPEC §11).
const (
	// PathDevice is the verification URI: enter or confirm a user code,
	// sign in, approve or deny.
	PathDevice = "/device"
	// PathDeviceLogin signs the person in and comes back to PathDevice.
	PathDeviceLogin = "/device/login"
)

// Brute-force bounds of user-code entry (RFC 8628 §5.1): every code looked
// up counts, per network address and per browser, across replicas. A
// person needs one or two tries; 20^8 codes stay out of reach.
const (
	deviceTriesPerIP        = 20
	deviceTriesPerBrowser   = 10
	deviceTriesRefillPerSec = 1.0 / 30 // one more try every 30 s
)

// amrDeviceWeb is how a person who approved on the device page signed in.
var amrDeviceWeb = []string{amrWeChat}

// handleDevice serves GET /device[?user_code=] and POST /device
// (user_code, action=approve|deny).
func (a *Authenticator) handleDevice(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		a.errorPage(w, r, "", http.StatusBadRequest, "errForm", "")
		return
	}
	locale := pickLocale(r.Form.Get("ui_locales"), r.Header.Get("Accept-Language"))
	b := a.binding(w, r)
	raw := r.Form.Get("user_code")
	data := map[string]any{"Action": a.url(PathDevice), "UserCode": raw, "State": "enter"}
	if r.Method == http.MethodPost && !a.checkCSRF(r, "device") {
		a.errorPage(w, r, locale, http.StatusForbidden, "errCSRF", "")
		return
	}
	if raw == "" {
		a.renderPage(w, http.StatusOK, "device", locale, data, false)
		return
	}
	ok, err := a.takeDeviceTry(r, b)
	if err != nil {
		a.serverError(w, r, locale, "rate limit device codes", err)
		return
	}
	if !ok {
		data["Error"] = msg(locale, "deviceTooMany")
		data["ErrorCode"] = "too_many_tries"
		a.renderPage(w, http.StatusTooManyRequests, "device", locale, data, false)
		return
	}
	code, valid := storage.NormalizeUserCode(raw)
	var d storage.DeviceAuth
	if valid {
		d, err = a.cfg.Storage.DeviceAuthByUserCode(ctx, code)
		if errors.Is(err, storage.ErrNotFound) || err == nil && d.Kind != "device" {
			valid = false // a desktop login's code is scanned, not typed
		} else if err != nil {
			a.serverError(w, r, locale, "load device authorization", err)
			return
		}
	}
	now := a.now()
	switch {
	case !valid:
		data["Error"], data["ErrorCode"] = msg(locale, "deviceUnknown"), "unknown"
	case !now.Before(d.ExpiresAt):
		data["Error"], data["ErrorCode"] = msg(locale, "deviceExpired"), "expired"
	case d.Status == storage.DeviceApproved || d.Status == storage.DeviceRedeemed:
		data["State"], data["Done"] = "done", msg(locale, "deviceApproved")
	case d.Status == storage.DeviceDenied:
		data["State"], data["Done"] = "done", msg(locale, "deviceDenied")
	}
	if data["Error"] != nil {
		a.renderPage(w, http.StatusBadRequest, "device", locale, data, false)
		return
	}
	if data["State"] == "done" {
		a.renderPage(w, http.StatusOK, "device", locale, data, false)
		return
	}
	data["UserCode"] = storage.FormatUserCode(d.UserCode)
	client, err := a.cfg.Storage.Client(ctx, d.ClientID)
	if err != nil {
		a.serverError(w, r, locale, "load client", err)
		return
	}
	name := client.ID
	if client.Name != "" {
		name = client.Name
	}
	data["Client"], data["ClientID"], data["Scopes"] = name, client.ID, scopeLines(locale, d.Scopes)
	data["ThirdParty"] = !client.SkipConsent
	sess, err := a.session(ctx, r)
	if err != nil {
		a.serverError(w, r, locale, "load login session", err)
		return
	}
	if sess == nil {
		a.deviceSignIn(w, r, locale, d, data)
		return
	}
	if r.Method == http.MethodGet {
		user, err := a.cfg.Storage.User(ctx, sess.Subject)
		if err != nil {
			a.serverError(w, r, locale, "load user", err)
			return
		}
		data["State"], data["User"], data["CSRF"] = "confirm", displayName(user), a.csrfToken(b, "device")
		a.renderPage(w, http.StatusOK, "device", locale, data, false)
		return
	}
	approve := r.PostFormValue("action") == "approve"
	_, err = a.cfg.Storage.DecideDeviceAuth(ctx, d.UserCode, storage.DeviceDecision{
		Approve: approve, Subject: sess.Subject, AuthTime: sess.AuthTime, AMR: amrDeviceWeb, Now: now,
	})
	if errors.Is(err, storage.ErrConflict) {
		data["Error"], data["ErrorCode"] = msg(locale, "deviceExpired"), "expired"
		a.renderPage(w, http.StatusBadRequest, "device", locale, data, false)
		return
	}
	if err != nil {
		a.serverError(w, r, locale, "decide device authorization", err)
		return
	}
	if approve && !client.SkipConsent {
		if err := a.rememberConsent(r, sess.Subject, client.ID, d.Scopes); err != nil {
			a.log.WarnContext(ctx, "remember consent", "error", err)
		}
	}
	a.log.InfoContext(ctx, "device authorization decided on the web", "approved", approve, "client_id", client.ID, "subject", sess.Subject)
	data["State"], data["Done"] = "done", msg(locale, "deviceDenied")
	if approve {
		data["Done"] = msg(locale, "deviceApproved")
	}
	a.renderPage(w, http.StatusOK, "device", locale, data, false)
}

// deviceSignIn shows how to approve d without a login session: scan the
// Mini Program code (when scanning is configured), or sign in with WeChat
// here (website QR, or OAuth inside WeChat).
func (a *Authenticator) deviceSignIn(w http.ResponseWriter, r *http.Request, locale string, d storage.DeviceAuth, data map[string]any) {
	data["State"] = "signin"
	if a.website != nil || inWeChat(r) && a.official != nil {
		data["SignIn"] = a.url(PathDeviceLogin) + "?" + url.Values{"user_code": {storage.FormatUserCode(d.UserCode)}}.Encode()
	}
	if a.scan != nil {
		img, err := a.scan.code(r.Context(), d.UserCode, d.ExpiresAt)
		if err != nil {
			a.log.WarnContext(r.Context(), "mini program code for a device", "error", err)
		} else {
			data["Image"] = img
			data["ImageAlt"] = msg(locale, "scanAlt")
		}
	}
	a.renderPage(w, http.StatusOK, "device", locale, data, false)
}

// handleDeviceLogin serves GET /device/login?user_code=: it signs the
// person in with WeChat and comes back to /device?user_code=.
func (a *Authenticator) handleDeviceLogin(w http.ResponseWriter, r *http.Request) {
	code, ok := storage.NormalizeUserCode(r.URL.Query().Get("user_code"))
	resume := PathDevice
	if ok {
		resume += "?" + url.Values{"user_code": {storage.FormatUserCode(code)}}.Encode()
	}
	p := &pending{
		Binding: hashHex(a.binding(w, r)),
		Locale:  pickLocale(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language")),
		Resume:  resume,
	}
	switch {
	case inWeChat(r) && a.official != nil:
		p.Kind, p.Scope = wechat.KindOfficial, wechat.ScopeBase
	case a.website != nil:
		p.Kind, p.Scope = wechat.KindWebsite, wechat.ScopeLogin
	default:
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errOpenInWeChat", a.url(resume))
		return
	}
	a.toWeChat(w, r, p)
}

// takeDeviceTry counts one user code tried by this browser (binding b)
// from this address, and reports whether it is within the limits.
func (a *Authenticator) takeDeviceTry(r *http.Request, b string) (bool, error) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := a.now()
	ok, err := a.cfg.Storage.TakeRate(r.Context(), "device-code/ip/"+ip, 1, deviceTriesRefillPerSec, deviceTriesPerIP, now)
	if err != nil || !ok {
		return false, err
	}
	return a.cfg.Storage.TakeRate(r.Context(), "device-code/browser/"+hashHex(b), 1, deviceTriesRefillPerSec, deviceTriesPerBrowser, now)
}

// rememberConsent adds scopes to subject's consent to clientID, as the
// consent page does.
func (a *Authenticator) rememberConsent(r *http.Request, subject, clientID string, scopes []string) error {
	ctx := r.Context()
	all := slices.Clone(scopes)
	if old, err := a.cfg.Storage.Consent(ctx, subject, clientID); err == nil {
		all = append(all, old.Scopes...)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	sort.Strings(all)
	return a.cfg.Storage.PutConsent(ctx, storage.Consent{Subject: subject, ClientID: clientID, Scopes: slices.Compact(all), GrantedAt: a.now().UTC()})
}
