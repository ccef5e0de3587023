package wechat

import (
	"bytes"
	"errors"
	"net/url"
	"testing"
	"time"
)

// FuzzParsePushMessage feeds arbitrary bodies to the push XML parser and to
// PushReceiver.Open with a valid signature: no panic, every error wraps an
// ErrPush value, and a parsed event survives a rebuild.
func FuzzParsePushMessage(f *testing.F) {
	f.Add([]byte(`<xml><ToUserName><![CDATA[gh_21ee2dc92d7d]]></ToUserName><FromUserName><![CDATA[os-IKuHd9pJ6xsn4mS7GyL4HxqI4]]></FromUserName><CreateTime>1457752430</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_1000000]]></EventKey><Ticket><![CDATA[gQHr8ToAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xLzMwT19GN2ZsSkkxZFBGTkpkMjEzAAIEIYnjVgMECAcAAA==]]></Ticket></xml>`))
	f.Add([]byte(`<xml><ToUserName><![CDATA[gh_21ee2dc92d7d]]></ToUserName><FromUserName><![CDATA[os-IKuHd9pJ6xsn4mS7GyL4HxqI4]]></FromUserName><CreateTime>1457752395</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[1000000]]></EventKey><Ticket><![CDATA[gQHr8ToAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xLzMwT19GN2ZsSkkxZFBGTkpkMjEzAAIEIYnjVgMECAcAAA==]]></Ticket></xml>`))
	f.Add([]byte(`<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId></xml>`))
	f.Add([]byte(`<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[AAAA]]></Encrypt></xml>`))
	f.Add([]byte(`<xml><CreateTime>x</CreateTime></xml>`))
	f.Add([]byte(`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>`))
	r := &PushReceiver{AppID: "wx1", Token: "t", Mode: PushCompatible}
	r.Cipher, _ = NewPushCipher("wx1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	now := time.Unix(1700000000, 0)
	q := url.Values{"timestamp": {"1700000000"}, "nonce": {"n"}, "signature": {PushSignature("t", "1700000000", "n")}}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParsePushMessage(body)
		if err != nil {
			if !errors.Is(err, ErrPushMalformed) {
				t.Fatalf("error %v does not wrap ErrPushMalformed", err)
			}
		} else {
			_ = m.DedupKey()
			if scene, ok := m.QRScene(); ok {
				again, err := ParsePushMessage(NewPushEvent(m.ToUserName, m.FromUserName, m.CreateTime, m.Event, m.EventKey, m.Ticket))
				if err != nil {
					t.Fatalf("rebuilt event does not parse: %v", err)
				}
				if s2, ok2 := again.QRScene(); !ok2 || s2 != scene {
					t.Fatalf("rebuilt scene %q, %v; want %q", s2, ok2, scene)
				}
			}
			_ = m.NewTextReply("ok", now)
		}
		if _, err := r.Open(q, body, now); err != nil {
			for _, e := range []error{ErrPushMalformed, ErrPushMode, ErrPushSignature, ErrPushAppID, ErrPushStale} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("Open error %v wraps no ErrPush value", err)
		}
	})
}

// FuzzPushDecrypt feeds arbitrary ciphertexts to the safe-mode decryption,
// and arbitrary messages through an encrypt/decrypt round trip.
func FuzzPushDecrypt(f *testing.F) {
	c, err := NewPushCipher("wx0123456789abcdef", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := c.Encrypt([]byte("<xml><MsgType>event</MsgType></xml>"), []byte("RANDOM0123456789"))
	f.Add(seed, []byte("msg"))
	f.Add("jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==", []byte(""))
	f.Add("", []byte("x"))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", bytes.Repeat([]byte{0x20}, 64))
	f.Fuzz(func(t *testing.T, encrypted string, msg []byte) {
		if _, err := c.Decrypt(encrypted); err != nil && !errors.Is(err, ErrPushMalformed) && !errors.Is(err, ErrPushAppID) {
			t.Fatalf("Decrypt error %v", err)
		}
		enc, err := c.Encrypt(msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decrypt(enc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip = %q, %v; want %q", got, err, msg)
		}
	})
}
