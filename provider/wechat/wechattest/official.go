package wechattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// Official-account features: parametric QR codes (/cgi-bin/qrcode/create,
// /cgi-bin/showqrcode), followers (/cgi-bin/user/info), and the person's
// side of a scan (POST /sim/oa-scan), which pushes the event WeChat would
// push to the account's server URL.

// qrTicket is a parametric QR code the simulator issued.
type qrTicket struct {
	appID    string
	scene    string // scene_str, or scene_id in decimal
	url      string // what the image encodes
	created  time.Time
	expires  time.Time // zero for permanent codes
	lifetime int64
}

// follow is a person following an official account.
type follow struct {
	since      time.Time
	qrSceneStr string // scene of the QR code they followed through
	qrSceneID  int64
}

// OfficialQRCode is a parametric QR code as GET /sim/oaqrcodes lists it.
type OfficialQRCode struct {
	AppID     string    `json:"appid"`
	Ticket    string    `json:"ticket"`
	URL       string    `json:"url"`
	Scene     string    `json:"scene"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a permanent code.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func checkPush(appID string, p Push) error {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wechattest: app %s: push URL %q is not an http(s) URL", appID, p.URL)
	}
	if p.Token == "" {
		return fmt.Errorf("wechattest: app %s: push token required", appID)
	}
	switch p.Mode {
	case "", wechat.PushPlaintext:
	case wechat.PushCompatible, wechat.PushSafe:
		if _, err := wechat.DecodeEncodingAESKey(p.EncodingAESKey); err != nil {
			return fmt.Errorf("wechattest: app %s: %w", appID, err)
		}
	default:
		return fmt.Errorf("wechattest: app %s: unknown push mode %q", appID, p.Mode)
	}
	return nil
}

// SetPush sets (or, with the zero Push, clears) where the events of the
// official account appID are pushed.
func (s *Server) SetPush(appID string, p Push) error {
	if a, ok := s.apps[appID]; !ok || a.Kind != wechat.KindOfficial {
		return fmt.Errorf("wechattest: %q is not an official account of this simulator", appID)
	}
	if p.URL != "" {
		if err := checkPush(appID, p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.URL == "" {
		delete(s.pushes, appID)
	} else {
		s.pushes[appID] = p
	}
	return nil
}

// OriginalID returns the original ID (gh_…) of an app, which pushes carry
// as ToUserName.
func (s *Server) OriginalID(appID string) string {
	d := s.derive("original-id", appID)
	return "gh_" + fmt.Sprintf("%x", d[:6])
}

// Unfollow makes user stop following the official account appID, so that
// their next scan is a subscribe again.
func (s *Server) Unfollow(appID, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.followers, identity{appID, user})
}

// qrcodeCreate: POST /cgi-bin/qrcode/create?access_token.
func (s *Server) qrcodeCreate(w http.ResponseWriter, r *http.Request, path string) int {
	if r.Method != http.MethodPost {
		return wechat.CodeRequirePOST
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return wechat.CodeDataFormat
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	appID, errc := s.checkServerTokenLocked(r.URL.Query().Get("access_token"))
	if errc != 0 {
		return errc
	}
	if s.apps[appID].Kind != wechat.KindOfficial {
		return wechat.CodeUnauthorized
	}
	var req wechat.QRCodeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return wechat.CodeDataFormat
	}
	t := &qrTicket{appID: appID, created: s.now()}
	sc := req.ActionInfo.Scene
	switch req.ActionName {
	case wechat.QRActionStrScene, wechat.QRActionLimitStrScene:
		// A missing scene is accepted (WeChat does); too long is not.
		if len(sc.SceneStr) > wechat.MaxQRSceneLength {
			return wechat.CodeInvalidActionInfo
		}
		t.scene = sc.SceneStr
	case wechat.QRActionScene:
		if sc.SceneID < 0 || sc.SceneID > 4294967295 {
			return wechat.CodeInvalidActionInfo
		}
		t.scene = strconv.FormatInt(sc.SceneID, 10)
	case wechat.QRActionLimitScene:
		if sc.SceneID < 1 || sc.SceneID > 100000 {
			return wechat.CodeInvalidActionInfo
		}
		t.scene = strconv.FormatInt(sc.SceneID, 10)
	default:
		return wechat.CodeInvalidActionName
	}
	resp := wechat.QRCode{}
	if req.ActionName == wechat.QRActionScene || req.ActionName == wechat.QRActionStrScene {
		secs := req.ExpireSeconds
		if secs == 0 {
			secs = 60 // WeChat's default today
		}
		if secs < 1 || secs > wechat.MaxQRExpireSeconds {
			return wechat.CodeInvalidActionInfo
		}
		t.lifetime, t.expires = secs, t.created.Add(time.Duration(secs)*time.Second)
		resp.ExpireSeconds = secs
	}
	// Tickets are standard Base64 with '+', '/' and '=' in them, as
	// WeChat's are, so that clients must URL-encode them.
	raw := make([]byte, 64)
	rand.Read(raw)
	raw[0], raw[1] = 0xfb, 0xff // "+/…" at the start
	resp.Ticket = base64.StdEncoding.EncodeToString(raw)
	resp.URL = "http://weixin.qq.com/q/02" + randomString(22)
	t.url = resp.URL
	s.qrcodes[resp.Ticket] = t
	s.pruneLocked()
	s.writeJSON(w, ctypeJSON, resp)
	return 0
}

// liveTicketLocked returns the unexpired QR code of ticket.
func (s *Server) liveTicketLocked(ticket string) (*qrTicket, bool) {
	t, ok := s.qrcodes[ticket]
	if !ok || (!t.expires.IsZero() && !s.now().Before(t.expires)) {
		return nil, false
	}
	return t, true
}

// showQRCode: GET /cgi-bin/showqrcode?ticket (mp.weixin.qq.com). The
// image is a PNG of the code's url; unknown and expired tickets are 404.
func (s *Server) showQRCode(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t, ok := s.liveTicketLocked(r.URL.Query().Get("ticket"))
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", ctypePlain)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	q, err := qrcode.New(t.url, qrcode.Medium)
	var png []byte
	if err == nil {
		png, err = q.PNG(-8) // whole pixels per module: crisp for any decoder
	}
	if err != nil {
		http.Error(w, "encode QR code", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=604800")
	w.Write(png)
}

// followerInfo: GET /cgi-bin/user/info?access_token&openid&lang, with
// WeChat's field rules since 2021: nickname, avatar, sex and region empty;
// unionid only for an account bound to an Open Platform account; a
// non-follower gets only subscribe 0, openid and tagid_list.
func (s *Server) followerInfo(w http.ResponseWriter, r *http.Request, path string) int {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	appID, errc := s.checkServerTokenLocked(q.Get("access_token"))
	if errc != 0 {
		return errc
	}
	if s.apps[appID].Kind != wechat.KindOfficial {
		return wechat.CodeUnauthorized
	}
	openID := q.Get("openid")
	id, ok := s.byOpenID[openID]
	if !ok || id.appID != appID || openID != s.deriveID("openid", appID, id.user) {
		return wechat.CodeInvalidOpenID
	}
	f := s.followers[id]
	if f == nil {
		s.writeJSON(w, ctypeJSON, map[string]any{"subscribe": 0, "openid": openID, "tagid_list": []int{}})
		return 0
	}
	info := map[string]any{
		"subscribe": 1, "openid": openID, "nickname": "", "sex": 0, "language": "zh_CN",
		"city": "", "province": "", "country": "", "headimgurl": "", "subscribe_time": f.since.Unix(),
		"remark": "", "groupid": 0, "tagid_list": []int{},
		"subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": f.qrSceneID, "qr_scene_str": f.qrSceneStr,
	}
	if u := s.UnionID(appID, id.user); u != "" {
		info["unionid"] = u
	}
	s.writeJSON(w, ctypeJSON, info)
	return 0
}

// ScanResult is what a scan did: the event pushed and how the account's
// server answered.
type ScanResult struct {
	// Event is "subscribe" (the person started following) or "SCAN".
	Event  string `json:"event"`
	OpenID string `json:"openid"`
	// Delivered reports whether the server acknowledged the push (a 2xx
	// answer), after Attempts deliveries.
	Delivered bool `json:"delivered"`
	Attempts  int  `json:"attempts"`
	// Status is the HTTP status of the last delivery (0: no answer).
	Status int `json:"status"`
	// Reply is the text of the passive reply the person sees in the chat;
	// empty for "success" or an empty answer. A reply WeChat cannot read
	// shows as 该公众号暂时无法提供服务，请稍后再试.
	Reply string `json:"reply,omitempty"`
}

// Errors of Scan.
var (
	ErrUnknownTicket = errors.New("wechattest: unknown QR code ticket")
	ErrExpiredTicket = errors.New("wechattest: QR code expired")
)

// unavailableReply is what WeChat shows when the account answers with
// something it cannot read.
const unavailableReply = "该公众号暂时无法提供服务，请稍后再试"

// Scan plays user scanning the parametric QR code of ticket with WeChat
// (and following the account if they do not yet): it pushes a subscribe
// event (EventKey qrscene_SCENE) or, for a follower, a SCAN event
// (EventKey SCENE), signed (and in safe mode encrypted) as the account's
// push configuration says, with up to PushAttempts deliveries. An expired
// code pushes nothing (ErrExpiredTicket), as WeChat does not.
func (s *Server) Scan(ctx context.Context, appID, user, ticket string) (*ScanResult, error) {
	if !validUserName(user) {
		return nil, fmt.Errorf("wechattest: invalid user name %q", user)
	}
	s.mu.Lock()
	push, hasPush := s.pushes[appID]
	t, live := s.liveTicketLocked(ticket)
	_, known := s.qrcodes[ticket]
	switch {
	case s.apps[appID].Kind != wechat.KindOfficial:
		s.mu.Unlock()
		return nil, fmt.Errorf("wechattest: %q is not an official account of this simulator", appID)
	case !hasPush:
		s.mu.Unlock()
		return nil, fmt.Errorf("wechattest: official account %s has no push URL", appID)
	case !known || (live && t.appID != appID):
		s.mu.Unlock()
		return nil, ErrUnknownTicket
	case !live:
		s.mu.Unlock()
		return nil, ErrExpiredTicket
	}
	s.userLocked(user)
	openID := s.openIDLocked(appID, user)
	id := identity{appID, user}
	res := &ScanResult{OpenID: openID}
	key := t.scene
	if s.followers[id] == nil {
		res.Event, key = wechat.EventSubscribe, "qrscene_"+t.scene
		f := &follow{since: s.now(), qrSceneStr: t.scene}
		if n, err := strconv.ParseInt(t.scene, 10, 64); err == nil {
			f.qrSceneID, f.qrSceneStr = n, ""
		}
		s.followers[id] = f
	} else {
		res.Event = wechat.EventScan
	}
	now := s.now()
	s.mu.Unlock()

	msg := wechat.NewPushEvent(s.OriginalID(appID), openID, now.Unix(), res.Event, key, ticket)
	s.deliver(ctx, appID, push, openID, msg, now, res)
	return res, nil
}

// deliver pushes msg to the account's server, retrying as WeChat does:
// every delivery reuses the body, timestamp and nonce; a 2xx answer ends
// it; no answer in time or another status is retried.
func (s *Server) deliver(ctx context.Context, appID string, p Push, openID string, msg []byte, now time.Time, res *ScanResult) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := randomDigits(10)
	q := url.Values{"signature": {wechat.PushSignature(p.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "openid": {openID}}
	body := msg
	var pc *wechat.PushCipher
	if p.Mode == wechat.PushSafe || p.Mode == wechat.PushCompatible {
		var err error
		if pc, err = wechat.NewPushCipher(appID, p.EncodingAESKey); err != nil {
			res.Reply = unavailableReply
			return
		}
		var msgSig string
		if body, msgSig, err = pc.SealPush(p.Token, s.OriginalID(appID), ts, nonce, msg); err != nil {
			res.Reply = unavailableReply
			return
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSig)
	}
	target := p.URL
	if strings.Contains(target, "?") {
		target += "&" + q.Encode()
	} else {
		target += "?" + q.Encode()
	}
	attempts := s.cfg.PushAttempts
	if attempts <= 0 {
		attempts = 3
	}
	timeout := s.cfg.PushTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	delay := s.cfg.PushRetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	hc := s.cfg.PushClient
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		res.Attempts = i + 1
		status, reply, err := s.pushOnce(ctx, hc, timeout, target, body)
		res.Status = status
		s.log.Info("pushed event", "appid", appID, "attempt", i+1, "status", status, "error", err)
		if err != nil || status < 200 || status > 299 {
			continue
		}
		res.Delivered = true
		res.Reply = readReply(p, pc, reply)
		return
	}
}

func (s *Server) pushOnce(ctx context.Context, hc *http.Client, timeout time.Duration, target string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/xml;charset=UTF-8")
	req.Header.Set("User-Agent", "Mozilla/4.0")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, wechat.MaxPushBody+1))
	return resp.StatusCode, b, err
}

func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// readReply returns the text the person sees for the server's answer.
func readReply(p Push, pc *wechat.PushCipher, b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "success" {
		return ""
	}
	if pc != nil && p.Mode == wechat.PushSafe {
		plain, err := pc.OpenReply(p.Token, b)
		if err != nil {
			return unavailableReply
		}
		b = plain
	} else if pc != nil && bytes.Contains(b, []byte("<Encrypt>")) {
		plain, err := pc.OpenReply(p.Token, b)
		if err != nil {
			return unavailableReply
		}
		b = plain
	}
	var m struct {
		MsgType string `xml:"MsgType"`
		Content string `xml:"Content"`
	}
	if err := xml.Unmarshal(b, &m); err != nil || m.MsgType != "text" || len(m.Content) > 2048 {
		return unavailableReply
	}
	return m.Content
}

// OfficialQRCodes returns the unexpired parametric QR codes of appID (all
// official accounts when appID is empty), newest first.
func (s *Server) OfficialQRCodes(appID string) []OfficialQRCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []OfficialQRCode
	for ticket, t := range s.qrcodes {
		if _, live := s.liveTicketLocked(ticket); !live || (appID != "" && t.appID != appID) {
			continue
		}
		out = append(out, OfficialQRCode{AppID: t.appID, Ticket: ticket, URL: t.url, Scene: t.scene, CreatedAt: t.created, ExpiresAt: t.expires})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].Ticket < out[j].Ticket
	})
	return out
}

// simOAQRCodes: GET /sim/oaqrcodes?appid → {"codes": [...]}, newest first.
func (s *Server) simOAQRCodes(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		helperError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	codes := s.OfficialQRCodes(r.URL.Query().Get("appid"))
	if codes == nil {
		codes = []OfficialQRCode{}
	}
	writeHelperJSON(w, http.StatusOK, map[string]any{"codes": codes})
}

// simOAScan: POST /sim/oa-scan (form appid, user, ticket) pushes the scan
// and answers the ScanResult as JSON (or, with form page=1, as a page);
// GET shows the page where a person picks a pending code and a test user.
func (s *Server) simOAScan(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.oaScanPage(w, r, "")
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		helperError(w, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		helperError(w, http.StatusBadRequest, "bad form")
		return
	}
	appID, ticket := r.PostFormValue("appid"), r.PostFormValue("ticket")
	if appID == "" {
		s.mu.Lock()
		if t, ok := s.qrcodes[ticket]; ok {
			appID = t.appID
		}
		s.mu.Unlock()
	}
	res, err := s.Scan(r.Context(), appID, r.PostFormValue("user"), ticket)
	page := r.PostFormValue("page") == "1"
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, ErrUnknownTicket):
			status = http.StatusNotFound
		case errors.Is(err, ErrExpiredTicket):
			status = http.StatusGone
		}
		if page {
			s.oaScanPage(w, r, err.Error())
			return
		}
		helperError(w, status, err.Error())
		return
	}
	if page {
		msg := fmt.Sprintf("%s pushed (%d deliveries, delivered: %v).", res.Event, res.Attempts, res.Delivered)
		if res.Reply != "" {
			msg += " Chat reply: " + res.Reply
		}
		s.oaScanPage(w, r, msg)
		return
	}
	writeHelperJSON(w, http.StatusOK, res)
}

var oaScanTmpl = template.Must(template.New("oascan").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>扫一扫 · WeChat simulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#111}
.code{display:flex;gap:1rem;align-items:flex-start;border-top:1px solid #ddd;padding:1rem 0}
img{width:132px;height:132px;image-rendering:pixelated}button{font-size:1rem;padding:.4rem .8rem;margin:.15rem;cursor:pointer;background:#07c160;color:#fff;border:0;border-radius:4px}
.note{color:#555;font-size:.9rem}code{background:#f3f3f3}</style></head>
<body><main><h1>扫一扫 (scan an official account's QR code)</h1>
{{if .Message}}<p role="status">{{.Message}}</p>{{end}}
<p class="note">Each button stands for scanning that code with WeChat as the test user (and following the account if they do not yet). The simulator then pushes the event to the account's server URL.</p>
{{range .Codes}}<section class="code" data-ticket="{{.Ticket}}">
<img src="../cgi-bin/showqrcode?ticket={{.Ticket}}" alt="QR code">
<div><p><code>{{.AppID}}</code> · expires {{.ExpiresAt.Format "15:04:05"}}</p>
{{$c := .}}{{range $.Users}}<form method="post" action="oa-scan"><input type="hidden" name="appid" value="{{$c.AppID}}"><input type="hidden" name="ticket" value="{{$c.Ticket}}"><input type="hidden" name="user" value="{{.Name}}"><input type="hidden" name="page" value="1"><button type="submit" data-user="{{.Name}}">扫码 as {{.Nickname}} ({{.Name}})</button></form>{{end}}
</div></section>
{{else}}<p>No QR code is waiting to be scanned. Open a login page that shows one, then reload this page.</p>{{end}}
<p class="note">WeChat simulator (wechattest) — for tests and local development only.</p>
</main></body></html>`))

func (s *Server) oaScanPage(w http.ResponseWriter, r *http.Request, message string) {
	var users []User
	for _, u := range s.sortedUsers() {
		if !u.Snapshot {
			users = append(users, u)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	oaScanTmpl.Execute(w, map[string]any{"Codes": s.OfficialQRCodes(r.URL.Query().Get("appid")), "Users": users, "Message": message})
}
