package weblogin

import (
	"context"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Paths of the waiting page, below the issuer.
const (
	// PathWait shows what to scan and waits (?id=).
	PathWait = "/login/wait"
	// PathWaitStatus answers the waiting page's polls: {"status": …}.
	PathWaitStatus = "/login/wait/status"
	// PathWaitContinue checks once and, when approved, signs the browser
	// in and resumes the authorization (the data-login="continue" link).
	PathWaitContinue = "/login/wait/continue"
	// PathWaitScript is the waiting page's script.
	PathWaitScript = "/login/wait.js"
	// PathWaitLeft is where the waiting page's script says the page is
	// being closed (POST, a beacon from pagehide).
	PathWaitLeft = "/login/wait/left"
)

// How the provider knows a waiting page is still open. The page's script
// polls PathWaitStatus every 2 to 5 seconds, a page without JavaScript
// reloads itself every noScriptRefresh, and each poll or load records the
// page as seen (storage.DeviceAuth.SeenAt, at most once per pageTouchEvery,
// so it works on every replica); closing the page sends a beacon that
// marks it gone at once. A scan of a login whose page was not seen for
// pageGoneAfter is refused (reasonClosed): nobody would collect it.
const (
	pageTouchEvery  = 5 * time.Second
	pageGoneAfter   = 20 * time.Second
	noScriptRefresh = 10 // seconds
)

// stepWait marks the login state kept inside a waiting DeviceAuth.
const stepWait = "wait"

// waitInterval is the least time between two polls of a waiting page; its
// script starts there and backs off.
const waitInterval = 2 * time.Second

// A waitKind is a login method that finishes out of band. Its login is a
// storage.DeviceAuth of Kind name holding the login state: the page shows
// what to scan, someone else approves the DeviceAuth (DecideDeviceAuth by
// its user code: the Mini Program through /oauth2/device/verify, an
// official-account push), and the page, which polls, then signs the
// browser in as the approver and resumes the authorization request.
type waitKind struct {
	// lifetime is how long the person has to scan.
	lifetime time.Duration
	// amr is recorded as how the person signed in.
	amr []string
	// method, when set, is the login method finishWait records the login
	// under (users' last login, the login event); empty when whoever
	// approved has recorded it already (a push handler's Users.SignIn).
	method string
	// show returns what the waiting page shows for d: the image to scan
	// and the instructions. An error is logged and shown as errWeChat.
	show func(ctx context.Context, d storage.DeviceAuth, locale string) (waitView, error) // prepare, when set, readies a new login before it is stored: it
	// gets the login's user code and may keep what it made in p (the
	// official account's QR code, whose scene carries the user code). An
	// error is logged and shown as errWeChat.
	prepare func(ctx context.Context, userCode string, p *pending) error
}

// waitView is a waitKind's part of the waiting page.
type waitView struct {
	// Image is a data: URL of the code to scan.
	Image template.URL
	// Alt, Instructions are the image's text and the line below it.
	Alt, Instructions string
}

// startWait keeps p in a new DeviceAuth of the given kind and sends the
// browser to its waiting page.
func (a *Authenticator) startWait(w http.ResponseWriter, r *http.Request, p *pending, kind string) {
	ctx := r.Context()
	wk := a.waits[kind]
	p.Step = stepWait
	v, _ := url.ParseQuery(p.Params)
	now := a.now().UTC()
	d := storage.DeviceAuth{
		DeviceCode: randomToken(), Kind: kind, ClientID: p.ClientID,
		Scopes:    strings.Fields(v.Get("scope")),
		CreatedAt: now, ExpiresAt: now.Add(wk.lifetime), Interval: waitInterval,
		SeenAt: now, // the page is about to load
	}
	var err error
	for range 3 { // a user code may be taken; draw again
		d.UserCode = storage.NewUserCode()
		if wk.prepare != nil {
			if err := wk.prepare(ctx, d.UserCode, p); err != nil {
				a.log.WarnContext(ctx, "prepare pending login", "kind", kind, "error", err)
				a.errorPage(w, r, p.Locale, http.StatusBadGateway, "errWeChat", a.authorizeURL(p))
				return
			}
		}
		if d.Data, err = encodePending(p); err != nil {
			break
		}
		if err = a.cfg.Storage.CreateDeviceAuth(ctx, d); !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		a.serverError(w, r, p.Locale, "create pending login", err)
		return
	}
	a.log.InfoContext(ctx, "login waiting for a scan", "kind", kind, "client_id", p.ClientID)
	noStore(w)
	http.Redirect(w, r, a.waitURL(PathWait, d.DeviceCode), http.StatusSeeOther)
}

func (a *Authenticator) waitURL(path, id string) string {
	return a.url(path) + "?" + url.Values{"id": {id}}.Encode()
}

// loadWait returns the waiting login id and its login state. msg is a page
// message key when there is none for this browser.
func (a *Authenticator) loadWait(r *http.Request, id string) (storage.DeviceAuth, *pending, string, error) {
	if id == "" {
		return storage.DeviceAuth{}, nil, "errNoState", nil
	}
	d, err := a.cfg.Storage.DeviceAuth(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return d, nil, "errStateExpired", nil
	}
	if err != nil {
		return d, nil, "", err
	}
	if _, ok := a.waits[d.Kind]; !ok {
		return d, nil, "errStateExpired", nil // a device flow's code, not a login
	}
	p, err := decodePending(d.Data)
	if err != nil {
		return d, nil, "", err
	}
	if p.Step != stepWait {
		return d, nil, "errStateExpired", nil
	}
	if !a.boundTo(r, p.Binding) {
		return d, nil, "errOtherBrowser", nil
	}
	return d, p, "", nil
}

// seeWait records that the waiting page of login id (read as d) is still
// open, unless it was recorded less than pageTouchEvery ago or the login
// is decided. A failure is logged: the page carries on.
func (a *Authenticator) seeWait(ctx context.Context, id string, d storage.DeviceAuth) {
	now := a.now()
	if d.Status != storage.DevicePending || now.Sub(d.SeenAt) < pageTouchEvery {
		return
	}
	if err := a.cfg.Storage.TouchDeviceAuth(ctx, id, now.UTC()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.log.WarnContext(ctx, "record waiting page seen", "error", err)
	}
}

// pageGone reports whether the waiting page of d has not been seen for
// pageGoneAfter at now (closed, or its computer asleep or offline).
func pageGone(d storage.DeviceAuth, now time.Time) bool {
	return now.Sub(d.SeenAt) > pageGoneAfter
}

// waitStatus is what the waiting page shows of d at now.
func waitStatus(d storage.DeviceAuth, now time.Time) string {
	if !now.Before(d.ExpiresAt) && d.Status != storage.DeviceRedeemed {
		return "expired"
	}
	if d.Status == storage.DeviceRedeemed {
		return "used"
	}
	return string(d.Status)
}

// handleWait serves GET /login/wait?id=: the code to scan while pending;
// a clear message, with a way to a fresh code, once expired or denied.
func (a *Authenticator) handleWait(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	d, p, msg, err := a.loadWait(r, id)
	if err != nil {
		a.serverError(w, r, "", "load pending login", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	status := waitStatus(d, a.now())
	switch status {
	case "pending":
		a.seeWait(ctx, id, d)
	case "approved":
		a.finishWait(w, r, id, d, p)
		return
	case "used":
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errStateExpired", a.authorizeURL(p))
		return
	case "denied":
		// Denied by the provider, not the person: say why, and send
		// access_denied back to the client (SPEC §10).
		switch d.Reason {
		case reasonNoAccount:
			a.refusePage(w, r, p, "errNoAccount", fosite.ErrAccessDenied.WithHint("Registration is closed and no account matches this WeChat user."))
			return
		case reasonDisabled:
			a.refusePage(w, r, p, "errDisabled", fosite.ErrAccessDenied.WithHint("The account is disabled."))
			return
		case reasonClosed:
			// Scanned while this page was closed: start again.
			status = "closed"
		}
	}
	data := map[string]any{
		"Status":    status,
		"Retry":     a.authorizeURL(p),
		"Continue":  a.waitURL(PathWaitContinue, id),
		"StatusURL": a.waitURL(PathWaitStatus, id),
		"Script":    a.url(PathWaitScript),
		"Interval":  int(waitInterval / time.Millisecond),
		"UserCode":  storage.FormatUserCode(d.UserCode),
		"Kind":      d.Kind,
		"Expires":   d.ExpiresAt.Unix(),
		"Left":      a.waitURL(PathWaitLeft, id),
		"Refresh":   "", // a pending page without JavaScript reloads itself
	}
	if status == "pending" {
		view, err := a.waits[d.Kind].show(ctx, d, p.Locale)
		if err != nil {
			a.log.WarnContext(ctx, "show pending login", "kind", d.Kind, "error", err)
			a.errorPage(w, r, p.Locale, http.StatusBadGateway, "errWeChat", a.authorizeURL(p))
			return
		}
		data["View"] = view
		data["Refresh"] = strconv.Itoa(noScriptRefresh)
	}
	code := http.StatusOK
	if status != "pending" {
		code = http.StatusGone
	}
	a.renderPage(w, code, "wait", p.Locale, data, status == "pending")
}

// handleWaitStatus serves GET /login/wait/status?id= to the waiting page's
// script: {"status": "pending" | "approved" | "denied" | "expired" |
// "used"}, from one read.
func (a *Authenticator) handleWaitStatus(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	id := r.URL.Query().Get("id")
	d, err := a.cfg.Storage.DeviceAuth(r.Context(), id)
	status := ""
	switch {
	case id == "" || errors.Is(err, storage.ErrNotFound):
		status = "unknown"
	case err != nil:
		a.log.ErrorContext(r.Context(), "load pending login", "error", err)
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		return
	default:
		if _, ok := a.waits[d.Kind]; !ok {
			status = "unknown"
		} else {
			status = waitStatus(d, a.now())
			a.seeWait(r.Context(), id, d)
		}
	}
	w.Write([]byte(`{"status":"` + status + `"}`))
}

// handleWaitLeft serves POST /login/wait/left?id=: the waiting page's
// beacon as it is closed (or left for another page). A pending login is
// marked gone, so that a scan now is refused rather than approved for
// nobody; the page's next poll or load, if it comes back (a reload, the
// back button), marks it seen again.
func (a *Authenticator) handleWaitLeft(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	id := r.URL.Query().Get("id")
	d, p, _, err := a.loadWait(r, id)
	if err != nil {
		a.log.ErrorContext(r.Context(), "load pending login", "error", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if p != nil && d.Status == storage.DevicePending {
		if err := a.cfg.Storage.TouchDeviceAuth(r.Context(), id, time.Time{}); err != nil && !errors.Is(err, storage.ErrNotFound) {
			a.log.WarnContext(r.Context(), "record waiting page closed", "error", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		a.log.DebugContext(r.Context(), "waiting login page closed", "kind", d.Kind, "client_id", d.ClientID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleWaitContinue serves GET /login/wait/continue?id=: it checks once;
// approved, it signs the browser in and resumes the authorization;
// otherwise it goes back to the waiting page, which says where things
// stand.
func (a *Authenticator) handleWaitContinue(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	d, p, msg, err := a.loadWait(r, id)
	if err != nil {
		a.serverError(w, r, "", "load pending login", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	if waitStatus(d, a.now()) == "approved" {
		a.finishWait(w, r, id, d, p)
		return
	}
	noStore(w)
	http.Redirect(w, r, a.waitURL(PathWait, id), http.StatusSeeOther)
}

// finishWait redeems an approved waiting login (once, across replicas),
// signs the browser in as the approver and resumes the authorization.
func (a *Authenticator) finishWait(w http.ResponseWriter, r *http.Request, id string, d storage.DeviceAuth, p *pending) {
	ctx := r.Context()
	d, out, err := a.cfg.Storage.PollDeviceAuth(ctx, id, d.ClientID, a.now())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.serverError(w, r, p.Locale, "redeem pending login", err)
		return
	}
	if err != nil || out != storage.PollRedeemed {
		noStore(w)
		http.Redirect(w, r, a.waitURL(PathWait, id), http.StatusSeeOther)
		return
	}
	wk := a.waits[d.Kind]
	if wk.method != "" {
		err := a.cfg.Users.RecordLogin(ctx, storage.Login{
			Subject: d.Subject, ClientID: d.ClientID, IP: provider.RequestIP(r),
			Details: map[string]any{"method": wk.method, "amr": strings.Join(wk.amr, " ")},
		})
		if errors.Is(err, provider.ErrUserDisabled) {
			a.refusePage(w, r, p, "errDisabled", fosite.ErrAccessDenied.WithHint("The account is disabled."))
			return
		}
		if err != nil {
			a.serverError(w, r, p.Locale, "record login", err)
			return
		}
	}
	if err := a.startSession(ctx, w, r, d.Subject, wk.amr); err != nil {
		a.serverError(w, r, p.Locale, "start login session", err)
		return
	}
	a.log.InfoContext(ctx, "login approved out of band", "kind", d.Kind, "client_id", d.ClientID, "subject", d.Subject)
	noStore(w)
	http.Redirect(w, r, a.authorizeURL(p), http.StatusSeeOther)
}

//go:embed wait.js
var waitScript []byte

// handleWaitScript serves the waiting page's script.
func (a *Authenticator) handleWaitScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(waitScript)
}
