package wechat_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// BenchmarkPushReceiver_Open: verifying (and in safe mode decrypting) one
// scan event, the CPU part of answering a push.
func BenchmarkPushReceiver_Open(b *testing.B) {
	const token, appID, key = "benchtoken", "wx0123456789abcdef", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	now := time.Unix(1700000000, 0)
	msg := wechat.NewPushEvent("gh_0123456789ab", "oSIMu1a2b3c4d5e6f7g8h9i0j1k2", now.Unix(), "subscribe", "qrscene_BCDFGHJK_AAAAAAAAAAAAAAAAAAAAAA", "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==")
	ts := strconv.FormatInt(now.Unix(), 10)
	q := url.Values{"timestamp": {ts}, "nonce": {"42"}, "signature": {wechat.PushSignature(token, ts, "42")}}
	b.Run("plaintext", func(b *testing.B) {
		r := &wechat.PushReceiver{AppID: appID, Token: token}
		for b.Loop() {
			if _, err := r.Open(q, msg, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("safe", func(b *testing.B) {
		c, _ := wechat.NewPushCipher(appID, key)
		body, msgSig, _ := c.SealPush(token, "gh_0123456789ab", ts, "42", msg)
		qs := url.Values{"encrypt_type": {"aes"}, "msg_signature": {msgSig}}
		for k, v := range q {
			qs[k] = v
		}
		r := &wechat.PushReceiver{AppID: appID, Token: token, Mode: wechat.PushSafe, Cipher: c}
		for b.Loop() {
			if _, err := r.Open(qs, body, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
