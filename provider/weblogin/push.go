package weblogin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// PathPushEvents is where WeChat pushes an official account's messages and
// events (SPEC §3), below the issuer.
const PathPushEvents = "/wechat/events/{appid}"

// Timing of a push. WeChat waits 5 seconds for an answer, then retries
// (three deliveries in all): the event is recorded within recordBudget or
// the push is answered 503 (WeChat delivers it again); it is then worked
// on until answerBy after arrival, and what is not done by then is
// finished by RunPushWorker once the claim lapses.
const (
	recordBudget   = 2 * time.Second
	answerBy       = 3500 * time.Millisecond
	pushClaim      = 20 * time.Second
	pushRetention  = time.Hour
	pushWorkerTick = 5 * time.Second
)

// scanEvent is a recorded scan of a follow-login QR code (the Data of a
// storage.PushEvent).
type scanEvent struct {
	OpenID     string `json:"openid"`
	CreateTime int64  `json:"create_time"`
	Event      string `json:"event"`
	Scene      string `json:"scene"`
	Ticket     string `json:"ticket"`
}

// handlePush serves GET/POST /wechat/events/{appid}: WeChat's URL check
// (echostr) and its pushes. A push is verified (signature, timestamp
// window, safe-mode decryption), recorded once whatever WeChat's retries
// do, and acknowledged well within WeChat's 5 seconds; a scan of a
// follow-login QR code signs its waiting page in.
func (a *Authenticator) handlePush(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	ctx := r.Context()
	appID := mux.Vars(r)["appid"]
	f := a.follows[appID]
	if f == nil {
		a.log.WarnContext(ctx, "push for an unknown official account", "appid", truncate(appID, 32))
		pushError(w, http.StatusNotFound, "unknown appid")
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		echo, err := f.receiver.VerifyURL(r.URL.Query())
		if err != nil {
			a.log.WarnContext(ctx, "push URL check refused", "appid", appID, "reason", "signature")
			pushError(w, http.StatusForbidden, "bad signature")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, echo)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wechat.MaxPushBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.log.WarnContext(ctx, "push refused", "appid", appID, "reason", "body too large")
			pushError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		pushError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	o, err := f.receiver.Open(r.URL.Query(), body, start)
	if err != nil {
		status, reason := http.StatusBadRequest, "malformed"
		switch {
		case errors.Is(err, wechat.ErrPushSignature):
			status, reason = http.StatusForbidden, "signature"
		case errors.Is(err, wechat.ErrPushStale):
			status, reason = http.StatusForbidden, "timestamp outside the window"
		case errors.Is(err, wechat.ErrPushAppID):
			status, reason = http.StatusForbidden, "for another app"
		case errors.Is(err, wechat.ErrPushMode):
			reason = "mode"
		}
		// err describes the failure without the body or the token.
		a.log.WarnContext(ctx, "push refused", "appid", appID, "reason", reason, "error", err)
		pushError(w, status, reason)
		return
	}
	m := o.Message
	scene, ok := m.QRScene()
	if !ok {
		// Not a scan of a parametric code: nothing for us to do.
		a.log.DebugContext(ctx, "push ignored", "appid", appID, "msg_type", truncate(m.MsgType, 16), "event", truncate(m.Event, 32))
		acknowledge(w)
		return
	}
	data, _ := json.Marshal(scanEvent{OpenID: m.FromUserName, CreateTime: m.CreateTime, Event: m.Event, Scene: scene, Ticket: m.Ticket})
	ev := storage.PushEvent{AppID: appID, Key: m.DedupKey(), OpenID: m.FromUserName, Data: data, ReceivedAt: start.UTC(), ExpiresAt: start.Add(pushRetention).UTC()}
	rctx, cancel := context.WithTimeout(ctx, recordBudget)
	fresh, err := a.cfg.Storage.RecordPushEvent(rctx, ev, start.Add(pushClaim))
	cancel()
	if err != nil {
		// Not recorded: let WeChat deliver it again rather than lose it.
		a.log.ErrorContext(ctx, "record push", "appid", appID, "error", err)
		w.Header().Set("Retry-After", "5")
		pushError(w, http.StatusServiceUnavailable, "try again")
		return
	}
	if !fresh {
		a.log.InfoContext(ctx, "push already received", "appid", appID, "event", m.Event)
		acknowledge(w)
		return
	}
	pctx, cancel := context.WithDeadline(ctx, start.Add(answerBy))
	reply, err := a.processScan(pctx, f, ev)
	cancel()
	if err != nil {
		// Recorded: RunPushWorker finishes it once the claim lapses.
		a.log.WarnContext(ctx, "push not processed in time; left for the worker", "appid", appID, "error", err)
		acknowledge(w)
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordBudget)
	if err := a.cfg.Storage.FinishPushEvent(fctx, appID, ev.Key); err != nil {
		a.log.WarnContext(ctx, "finish push", "appid", appID, "error", err)
	}
	cancel()
	if reply == "" {
		acknowledge(w)
		return
	}
	out := m.NewTextReply(reply, a.now())
	if o.Encrypted {
		if out, err = f.receiver.SealReplyTo(o, out); err != nil {
			a.log.ErrorContext(ctx, "seal passive reply", "appid", appID, "error", err)
			acknowledge(w)
			return
		}
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write(out)
}

// acknowledge answers a push with "success": WeChat does nothing more.
func acknowledge(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "success")
}

func pushError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, reason+"\n")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// processScan does the work of a recorded scan: it finds the waiting
// login of the scene, checks the ticket, links the WeChat identity (with
// the unionid from cgi-bin/user/info) and approves the login. It returns
// the passive reply for the person: the configured "signed in" reply once
// a waiting page will sign in, or why nothing happened (followReply). An
// error means "try again". A scan that cannot sign anyone in ends the
// login clearly: a login whose page was closed is denied (reasonClosed),
// as is one the users' rules refuse.
func (a *Authenticator) processScan(ctx context.Context, f *follow, ev storage.PushEvent) (string, error) {
	var s scanEvent
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		a.log.ErrorContext(ctx, "recorded push unreadable; dropped", "appid", ev.AppID, "error", err)
		return "", nil
	}
	log := a.log.With("appid", ev.AppID, "event", s.Event)
	userCode, ok := f.userCodeOf(s.Scene)
	if !ok {
		// Not a login code of ours (another QR code of the account): not
		// ours to answer.
		log.WarnContext(ctx, "scan of a QR code that belongs to no login")
		return "", nil
	}
	d, err := a.cfg.Storage.DeviceAuthByUserCode(ctx, userCode)
	if errors.Is(err, storage.ErrNotFound) {
		log.InfoContext(ctx, "scan of a login that is gone (expired long ago)")
		return f.reply(replyExpired, "", ""), nil
	}
	if err != nil {
		return "", err
	}
	p, err := decodePending(d.Data)
	if err != nil || d.Kind != kindOfficial || p.QR == nil || p.QR.AppID != ev.AppID {
		log.WarnContext(ctx, "scan of a QR code that belongs to no login")
		return "", nil
	}
	if p.QR.Ticket != s.Ticket {
		log.WarnContext(ctx, "scan with a ticket that is not the login's")
		return "", nil
	}
	name := d.ClientID
	if c, err := a.cfg.Storage.Client(ctx, d.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	reply := func(kind string) string { return f.reply(kind, p.Locale, name) }
	now := a.now()
	if why := scanOutcome(d, now); why == replyExpired {
		log.InfoContext(ctx, "QR code scanned after it expired")
		return reply(why), nil
	} else if why != "" {
		log.InfoContext(ctx, "QR code scanned again after its login was decided", "status", string(d.Status), "outcome", why)
		return reply(why), nil
	}
	if pageGone(d, now) {
		return a.denyScan(ctx, log, userCode, reasonClosed, now, reply)
	}
	fi, err := f.client.Follower(ctx, s.OpenID)
	if err != nil {
		return "", err
	}
	user, err := a.cfg.Users.SignIn(ctx, provider.SignIn{
		AppID: ev.AppID, OpenID: s.OpenID, UnionID: fi.UnionID, Kind: wechat.KindOfficial,
		ClientID: d.ClientID, Method: provider.MethodFollow,
	})
	if reason := refusalReason(err); reason != "" {
		// The person may not sign in: the waiting login ends denied, and
		// its page says why.
		return a.denyScan(ctx, log, userCode, reason, now, reply)
	}
	if err != nil {
		return "", err
	}
	now = a.now()
	d, err = a.cfg.Storage.DecideDeviceAuth(ctx, userCode, storage.DeviceDecision{
		Approve: true, Subject: user.Subject, AuthTime: now.UTC(), AMR: []string{amrWeChat}, Now: now,
		SeenSince: now.Add(-pageGoneAfter).UTC(),
	})
	if errors.Is(err, storage.ErrConflict) {
		if why := scanOutcome(d, now); why != "" {
			log.InfoContext(ctx, "QR code scanned twice; the first scan decided", "outcome", why)
			return reply(why), nil
		}
		// Still pending: the page went away while the person was checked.
		return a.denyScan(ctx, log, userCode, reasonClosed, now, reply)
	}
	if err != nil {
		return "", err
	}
	log.InfoContext(ctx, "follow login approved", "client_id", d.ClientID, "subject", user.Subject)
	if f.cfg.Reply == "" {
		return "", nil
	}
	return strings.ReplaceAll(f.cfg.Reply, "{client}", name), nil
}

// scanOutcome is the reply kind for a scan of login d at now that can no
// longer sign anyone in (expired, decided, used), or "" while it is
// pending.
func scanOutcome(d storage.DeviceAuth, now time.Time) string {
	switch {
	case !now.Before(d.ExpiresAt) && d.Status != storage.DeviceRedeemed:
		return replyExpired
	case d.Status == storage.DeviceDenied:
		switch d.Reason {
		case reasonNoAccount, reasonDisabled, reasonClosed:
			return d.Reason
		}
		return replyUsed
	case d.Status != storage.DevicePending:
		return replyUsed
	}
	return ""
}

// denyScan ends the waiting login userCode denied for reason, and returns
// the reply that says why (or, if a concurrent scan decided it first, why
// that one ended it).
func (a *Authenticator) denyScan(ctx context.Context, log *slog.Logger, userCode, reason string, now time.Time, reply func(string) string) (string, error) {
	log.InfoContext(ctx, "follow login refused", "reason", reason)
	d, err := a.cfg.Storage.DecideDeviceAuth(ctx, userCode, storage.DeviceDecision{Approve: false, Reason: reason, Now: now})
	if errors.Is(err, storage.ErrConflict) {
		if why := scanOutcome(d, now); why != "" {
			return reply(why), nil
		}
	}
	if err != nil {
		return "", err
	}
	return reply(reason), nil
}

// Reasons a waiting login is denied by the provider rather than by the
// person (storage.DeviceAuth.Reason).
const (
	reasonNoAccount = "no_account"
	reasonDisabled  = "disabled"
	// reasonClosed: the login page was closed (or stopped polling) when the
	// code was scanned.
	reasonClosed = "closed"
)

// refusalReason is the denial reason of a SignIn error that says the
// person may not sign in, or "".
func refusalReason(err error) string {
	switch {
	case errors.Is(err, provider.ErrUserDisabled):
		return reasonDisabled
	case errors.Is(err, provider.ErrNoAccount), errors.Is(err, provider.ErrPhoneRequired):
		// A scan brings no phone number to find the account by.
		return reasonNoAccount
	}
	return ""
}

// RunPushWorker finishes recorded pushes that were not finished when they
// were acknowledged (slow storage or WeChat, or a replica that died), on
// whichever replica claims them, until ctx ends. Every replica runs it.
func (a *Authenticator) RunPushWorker(ctx context.Context) {
	if len(a.follows) == 0 {
		return
	}
	t := time.NewTicker(pushWorkerTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.workPushes(ctx)
	}
}

// workPushes claims the due pushes and processes them once.
func (a *Authenticator) workPushes(ctx context.Context) {
	now := a.now()
	evs, err := a.cfg.Storage.ClaimPushEvents(ctx, now.UTC(), now.Add(pushClaim).UTC(), 20)
	if err != nil {
		a.log.WarnContext(ctx, "claim pushes", "error", err)
		return
	}
	for _, ev := range evs {
		f := a.follows[ev.AppID]
		if f == nil {
			continue // configured away; expires unprocessed
		}
		pctx, cancel := context.WithTimeout(ctx, pushClaim/2)
		_, err := a.processScan(pctx, f, ev)
		cancel()
		if err != nil {
			a.log.WarnContext(ctx, "process push", "appid", ev.AppID, "error", err)
			continue
		}
		if err := a.cfg.Storage.FinishPushEvent(ctx, ev.AppID, ev.Key); err != nil {
			a.log.WarnContext(ctx, "finish push", "appid", ev.AppID, "error", err)
		}
	}
}
