package wechattest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

const (
	oaSecret  = "dev-official-secret"
	pushToken = "simtoken42"
	aesKey    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
)

// receiver is an official account's push endpoint for the tests: it
// verifies every push with wechat.PushReceiver and answers as told.
type receiver struct {
	t    *testing.T
	r    *wechat.PushReceiver
	now  func() time.Time
	mu   sync.Mutex
	msgs []*wechat.PushMessage
	fail int    // answer 500 to this many deliveries first
	text string // passive reply text; "" answers success
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	o, err := rc.r.Open(r.URL.Query(), body, rc.now())
	if err != nil {
		rc.t.Errorf("push refused: %v", err)
		http.Error(w, "bad push", http.StatusForbidden)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.msgs = append(rc.msgs, o.Message)
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	if rc.text == "" {
		io.WriteString(w, "success")
		return
	}
	reply := o.Message.NewTextReply(rc.text, rc.now())
	if o.Encrypted {
		reply, err = rc.r.SealReply(reply, o.Timestamp, o.Nonce)
		require.NoError(rc.t, err)
	}
	w.Write(reply)
}

func newOfficialFixture(t *testing.T, mode wechat.PushMode) (*fixture, *receiver, *wechat.Client) {
	t.Helper()
	f := newFixture(t, wechattest.Config{PushRetryDelay: time.Millisecond, PushTimeout: 2 * time.Second})
	rc := &receiver{t: t, now: f.clk.Now, r: &wechat.PushReceiver{AppID: oaID, Token: pushToken, Mode: mode}}
	p := wechattest.Push{Token: pushToken, Mode: mode}
	if mode == wechat.PushSafe {
		p.EncodingAESKey = aesKey
		rc.r.Cipher, _ = wechat.NewPushCipher(oaID, aesKey)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	p.URL = srv.URL + "/wechat/events/" + oaID
	require.NoError(t, f.sim.SetPush(oaID, p))
	c := &wechat.Client{AppID: oaID, AppSecret: oaSecret, Endpoint: wechat.Endpoint{APIURL: f.ts.URL, OpenURL: f.ts.URL}, Now: f.clk.Now}
	return f, rc, c
}

func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(png))
	require.NoError(t, err)
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	require.NoError(t, err)
	var res *gozxing.Result
	for _, hints := range []map[gozxing.DecodeHintType]any{nil, {gozxing.DecodeHintType_TRY_HARDER: true}, {gozxing.DecodeHintType_PURE_BARCODE: true}} {
		if res, err = gzqr.NewQRCodeReader().Decode(bmp, hints); err == nil {
			break
		}
	}
	require.NoError(t, err)
	return res.GetText()
}

func TestOfficial_QRCodeAndShow(t *testing.T) {
	f, _, c := newOfficialFixture(t, wechat.PushPlaintext)
	ctx := context.Background()
	qr, err := c.CreateTempQRCode(ctx, "login_7f3a9c", 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, int64(300), qr.ExpireSeconds)
	require.True(t, strings.HasPrefix(qr.URL, "http://weixin.qq.com/q/"), qr.URL)
	require.True(t, strings.ContainsAny(qr.Ticket, "+/="), "tickets need URL-encoding: %q", qr.Ticket)

	// showqrcode: a real PNG of the url; the ticket must be URL-encoded.
	resp, body := f.get(t, wechat.PathShowQRCode, url.Values{"ticket": {qr.Ticket}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, qr.URL, decodeQR(t, []byte(body)))
	resp, _ = f.get(t, wechat.PathShowQRCode+"?ticket="+qr.Ticket, nil, "") // not encoded: '+' reads as ' '
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	codes := f.sim.OfficialQRCodes(oaID)
	require.Len(t, codes, 1)
	require.Equal(t, "login_7f3a9c", codes[0].Scene)

	// Expired: 404, and no longer listed.
	f.clk.Advance(5*time.Minute + time.Second)
	resp, _ = f.get(t, wechat.PathShowQRCode, url.Values{"ticket": {qr.Ticket}}, "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Empty(t, f.sim.OfficialQRCodes(oaID))

	// WeChat's validations.
	var ae *wechat.APIError
	_, err = c.CreateQRCode(ctx, wechat.QRCodeRequest{ActionName: "QR_BOGUS"})
	require.True(t, errors.As(err, &ae) && ae.Code == wechat.CodeInvalidActionName, "%v", err)
	_, err = c.CreateQRCode(ctx, wechat.QRCodeRequest{ActionName: wechat.QRActionStrScene, ActionInfo: wechat.QRActionInfo{Scene: wechat.QRSceneValue{SceneStr: strings.Repeat("x", 65)}}})
	require.True(t, errors.As(err, &ae) && ae.Code == wechat.CodeInvalidActionInfo, "%v", err)
	_, err = c.CreateQRCode(ctx, wechat.QRCodeRequest{ExpireSeconds: wechat.MaxQRExpireSeconds + 1, ActionName: wechat.QRActionStrScene, ActionInfo: wechat.QRActionInfo{Scene: wechat.QRSceneValue{SceneStr: "x"}}})
	require.True(t, errors.As(err, &ae) && ae.Code == wechat.CodeInvalidActionInfo, "%v", err)
	mp := &wechat.Client{AppID: mpID, AppSecret: mpSecret, Endpoint: c.Endpoint, Now: f.clk.Now}
	_, err = mp.CreateTempQRCode(ctx, "x", time.Minute)
	require.True(t, errors.As(err, &ae) && ae.Code == wechat.CodeUnauthorized, "a mini program may not: %v", err)
}

func TestOfficial_ScanPushesAndFollowerInfo(t *testing.T) {
	for _, mode := range []wechat.PushMode{wechat.PushPlaintext, wechat.PushSafe} {
		t.Run(string(mode), func(t *testing.T) {
			f, rc, c := newOfficialFixture(t, mode)
			ctx := context.Background()
			qr, err := c.CreateTempQRCode(ctx, "scene-1", time.Minute)
			require.NoError(t, err)
			openID := f.sim.OpenID(oaID, "alice")

			// Not a follower yet: user/info says so, without unionid.
			fi, err := c.Follower(ctx, openID)
			require.NoError(t, err)
			require.Equal(t, 0, fi.Subscribe)
			require.Empty(t, fi.UnionID)

			// First scan: subscribe with qrscene_; the reply reaches the chat.
			rc.text = "已登录 Demo"
			res, err := f.sim.Scan(ctx, oaID, "alice", qr.Ticket)
			require.NoError(t, err)
			require.Equal(t, wechattest.ScanResult{Event: "subscribe", OpenID: openID, Delivered: true, Attempts: 1, Status: 200, Reply: "已登录 Demo"}, *res)
			m := rc.msgs[0]
			require.Equal(t, f.sim.OriginalID(oaID), m.ToUserName)
			require.Equal(t, "qrscene_scene-1", m.EventKey)
			require.Equal(t, qr.Ticket, m.Ticket)

			// Now a follower: post-2021 fields, unionid (bound account).
			fi, err = c.Follower(ctx, openID)
			require.NoError(t, err)
			require.Equal(t, 1, fi.Subscribe)
			require.Equal(t, f.sim.UnionID(oaID, "alice"), fi.UnionID)
			require.NotEmpty(t, fi.UnionID)
			require.Empty(t, fi.Nickname)
			require.Equal(t, "scene-1", fi.QRSceneStr)

			// Second scan: SCAN without prefix; a server down twice gets
			// the third delivery, with the same body.
			rc.text, rc.fail = "", 2
			res, err = f.sim.Scan(ctx, oaID, "alice", qr.Ticket)
			require.NoError(t, err)
			require.Equal(t, "SCAN", res.Event)
			require.True(t, res.Delivered)
			require.Equal(t, 3, res.Attempts)
			require.Len(t, rc.msgs, 4)
			require.Equal(t, "scene-1", rc.msgs[1].EventKey)
			require.Equal(t, rc.msgs[1].DedupKey(), rc.msgs[3].DedupKey())

			// Down for good: three deliveries, then WeChat gives up.
			rc.fail = 5
			res, err = f.sim.Scan(ctx, oaID, "bob", qr.Ticket)
			require.NoError(t, err)
			require.False(t, res.Delivered)
			require.Equal(t, 3, res.Attempts)

			// Foreign openid: 40003.
			var ae *wechat.APIError
			_, err = c.Follower(ctx, f.sim.OpenID(mpID, "alice"))
			require.True(t, errors.As(err, &ae) && ae.Code == wechat.CodeInvalidOpenID, "%v", err)

			// Expired and unknown tickets push nothing.
			n := len(rc.msgs)
			f.clk.Advance(2 * time.Minute)
			_, err = f.sim.Scan(ctx, oaID, "alice", qr.Ticket)
			require.ErrorIs(t, err, wechattest.ErrExpiredTicket)
			_, err = f.sim.Scan(ctx, oaID, "alice", "nope")
			require.ErrorIs(t, err, wechattest.ErrUnknownTicket)
			require.Len(t, rc.msgs, n)
		})
	}
}

func TestOfficial_ScanHelperAndPage(t *testing.T) {
	f, _, c := newOfficialFixture(t, wechat.PushPlaintext)
	qr, err := c.CreateTempQRCode(context.Background(), "scene-2", time.Minute)
	require.NoError(t, err)
	resp, body := f.get(t, "/sim/oaqrcodes", url.Values{"appid": {oaID}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"scene":"scene-2"`)
	resp, body = f.get(t, "/sim/oa-scan", nil, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `data-user="alice"`)
	require.Contains(t, strings.ToUpper(body), strings.ToUpper(url.QueryEscape(qr.Ticket)))

	resp, body = f.post(t, "/sim/oa-scan", url.Values{"appid": {oaID}, "user": {"carol"}, "ticket": {qr.Ticket}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `"event":"subscribe"`)
	resp, _ = f.post(t, "/sim/oa-scan", url.Values{"appid": {oaID}, "user": {"carol"}, "ticket": {"unknown"}}, "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
