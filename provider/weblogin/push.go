package weblogin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
// the passive reply for the person, if any. An error means "try again";
// scans that cannot sign anyone in (unknown scene, expired or used code)
// are logged and done.
func (a *Authenticator) processScan(ctx context.Context, f *follow, ev storage.PushEvent) (string, error) {
	var s scanEvent
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		a.log.ErrorContext(ctx, "recorded push unreadable; dropped", "appid", ev.AppID, "error", err)
		return "", nil
	}
	log := a.log.With("appid", ev.AppID, "event", s.Event)
	userCode, ok := f.userCodeOf(s.Scene)
	if !ok {
		log.WarnContext(ctx, "scan of a QR code that belongs to no login")
		return "", nil
	}
	d, err := a.cfg.Storage.DeviceAuthByUserCode(ctx, userCode)
	if errors.Is(err, storage.ErrNotFound) {
		log.InfoContext(ctx, "scan of a login that is gone (expired long ago)")
		return "", nil
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
	now := a.now()
	switch {
	case d.Status != storage.DevicePending:
		log.InfoContext(ctx, "QR code scanned again after its login was decided", "status", string(d.Status))
		return "", nil
	case !now.Before(d.ExpiresAt):
		log.InfoContext(ctx, "QR code scanned after it expired")
		return "", nil
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
		log.InfoContext(ctx, "follow login refused", "client_id", d.ClientID, "reason", reason)
		_, err = a.cfg.Storage.DecideDeviceAuth(ctx, userCode, storage.DeviceDecision{Approve: false, Reason: reason, Now: now})
		if err != nil && !errors.Is(err, storage.ErrConflict) {
			return "", err
		}
		return "", nil
	}
	if err != nil {
		return "", err
	}
	_, err = a.cfg.Storage.DecideDeviceAuth(ctx, userCode, storage.DeviceDecision{
		Approve: true, Subject: user.Subject, AuthTime: now.UTC(), AMR: []string{amrWeChat}, Now: now,
	})
	if errors.Is(err, storage.ErrConflict) {
		log.InfoContext(ctx, "QR code scanned twice; the first scan decided")
		return "", nil
	}
	if err != nil {
		return "", err
	}
	log.InfoContext(ctx, "follow login approved", "client_id", d.ClientID, "subject", user.Subject)
	if f.cfg.Reply == "" {
		return "", nil
	}
	name := d.ClientID
	if c, err := a.cfg.Storage.Client(ctx, d.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	return strings.ReplaceAll(f.cfg.Reply, "{client}", name), nil
}

// Reasons a waiting login is denied by the provider rather than by the
// person (storage.DeviceAuth.Reason).
const (
	reasonNoAccount = "no_account"
	reasonDisabled  = "disabled"
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
