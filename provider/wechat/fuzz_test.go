package wechat

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeResponse feeds arbitrary bodies to the response decoder with
// every success shape: it must never panic, must return either an
// *APIError with a non-zero code or an error wrapping ErrUnavailable, and
// a decoded success shape must survive a JSON round trip. Seeds are real
// WeChat answers (testdata/fuzz/FuzzDecodeResponse).
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"session_key":"XxyaPnstTGqODxorPE1ebw==","openid":"o6Zx55Qk3mT1pVbR9cYdLw2eHs0A","unionid":"oR2bV5uYq8NcK1tW7zXeP3mJd9Fg"}`))
	f.Add([]byte(`{"errcode":40163,"errmsg":"code been used, rid: 6566f3a2-1b2c3d4e-5f607182"}`))
	f.Add([]byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1700000000,"appid":"wx3f7c2a9e51b04d86"}}}`))
	f.Add([]byte(`{"access_token":"78_U3RhYmxlVG9rZW5FeGFtcGxlRm9yVGVzdHNPbmx5QWJjZGVmZ2hpams","expires_in":5341}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		outs := []func() any{
			func() any { return new(Session) },
			func() any { return new(TokenResponse) },
			func() any { return new(PhoneResponse) },
			func() any { return new(OAuthToken) },
			func() any { return new(UserInfo) },
			func() any { return new(Status) },
		}
		for _, mk := range outs {
			out := mk()
			err := decodeResponse("fuzz", 200, body, out)
			var ae *APIError
			switch {
			case errors.As(err, &ae):
				if ae.Code == 0 {
					t.Fatalf("APIError with code 0 for %q", body)
				}
				_ = ae.Error()
				_ = ae.Class().String()
			case err != nil:
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("error %v does not wrap ErrUnavailable", err)
				}
			default:
				b, err := json.Marshal(out)
				if err != nil {
					t.Fatalf("re-encode %T: %v", out, err)
				}
				again := mk()
				if err := decodeResponse("fuzz", 200, b, again); err != nil {
					t.Fatalf("round trip of %s: %v", b, err)
				}
				if !reflect.DeepEqual(out, again) {
					t.Fatalf("round trip changed %T: %#v != %#v", out, out, again)
				}
			}
		}
	})
}

// FuzzDecryptData checks that DecryptData never panics, fails only with its
// sentinel errors, and returns only JSON whose watermark names appID.
// Seeds include the wechat-api.md §4.4 vector
// (testdata/fuzz/FuzzDecryptData).
func FuzzDecryptData(f *testing.F) {
	const data = "nWBCFBYkGuAcki2Rn5y2I/5MsfzBI+n+/eSbrMwtOlkFFAsZc7iHLKTNQfiP6Ut/JmmPELSMB76drA+DnbQzW8IMxta2Od3Me743RsbjyhKt0/WYuDZNInXj4pqXmYZODgiNmqyqqEnjOoM48CAEofR3re9jHNscRxZslxIlQezPO4ZHU5o73vkpKtdz311ujAZ41U0SqhGukcd2xjnpzg=="
	f.Add("XxyaPnstTGqODxorPE1ebw==", data, "ChssPU5fYHGCk6S1xtfo+Q==", "wx3f7c2a9e51b04d86")
	f.Add("XxyaPnstTGqODxorPE1ebw==", data, "ChssPU5fYHGCk6S1xtfo+Q==", "wxother")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", data, "ChssPU5fYHGCk6S1xtfo+Q==", "wx3f7c2a9e51b04d86")
	f.Fuzz(func(t *testing.T, key, data, iv, appID string) {
		pt, err := DecryptData(key, data, iv, appID)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSessionKeyMismatch) && !errors.Is(err, ErrWatermarkMismatch) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var w struct {
			Watermark Watermark `json:"watermark"`
		}
		if err := json.Unmarshal(pt, &w); err != nil || w.Watermark.AppID != appID || appID == "" {
			t.Fatalf("accepted %q for appid %q", pt, appID)
		}
	})
}
