package wechat_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// The worked vector of wechat-api.md §4.4.
const (
	vecSessionKey = "XxyaPnstTGqODxorPE1ebw=="
	vecIV         = "ChssPU5fYHGCk6S1xtfo+Q=="
	vecAppID      = "wx3f7c2a9e51b04d86"
	vecData       = "nWBCFBYkGuAcki2Rn5y2I/5MsfzBI+n+/eSbrMwtOlkFFAsZc7iHLKTNQfiP6Ut/JmmPELSMB76drA+DnbQzW8IMxta2Od3Me743RsbjyhKt0/WYuDZNInXj4pqXmYZODgiNmqyqqEnjOoM48CAEofR3re9jHNscRxZslxIlQezPO4ZHU5o73vkpKtdz311ujAZ41U0SqhGukcd2xjnpzg=="
	vecPlain      = `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1700000000,"appid":"wx3f7c2a9e51b04d86"}}`
	vecRawData    = `{"nickName":"微信用户","gender":0,"language":"zh_CN","city":"","province":"","country":"","avatarUrl":"https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"}`
	vecRawSig     = "d8962ae079fcda871c46ebfa747ddc22245bcdd1"
	vecCheckSig   = "d0d7cc0b1fa861fc121a69f4469906e25e377642992e5b039b891e3f6c4535b9"
)

func TestDecryptData(t *testing.T) {
	pt, err := wechat.DecryptData(vecSessionKey, vecData, vecIV, vecAppID)
	require.NoError(t, err)
	require.Equal(t, vecPlain, string(pt))
	var p wechat.PhoneInfo
	require.NoError(t, json.Unmarshal(pt, &p))
	require.Equal(t, "86", p.CountryCode)
	require.Equal(t, vecAppID, p.Watermark.AppID)

	// '+' turned into ' ' by form decoding is repaired.
	pt, err = wechat.DecryptData(vecSessionKey, strings.ReplaceAll(vecData, "+", " "), vecIV, vecAppID)
	require.NoError(t, err)
	require.Equal(t, vecPlain, string(pt))
}

func TestDecryptData_errors(t *testing.T) {
	otherKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	tests := []struct {
		name                 string
		key, data, iv, appID string
		want                 error
	}{
		{"rotated session key", otherKey, vecData, vecIV, vecAppID, wechat.ErrSessionKeyMismatch},
		{"wrong iv", vecSessionKey, vecData, base64.StdEncoding.EncodeToString(make([]byte, 16)), vecAppID, wechat.ErrSessionKeyMismatch},
		{"other app", vecSessionKey, vecData, vecIV, "wxd0000000000000a1", wechat.ErrWatermarkMismatch},
		{"empty app", vecSessionKey, vecData, vecIV, "", wechat.ErrWatermarkMismatch},
		{"key not base64", "not base64!", vecData, vecIV, vecAppID, wechat.ErrMalformed},
		{"key too short", "AAAA", vecData, vecIV, vecAppID, wechat.ErrMalformed},
		{"iv too long", vecSessionKey, vecData, vecSessionKey + "AAAA", vecAppID, wechat.ErrMalformed},
		{"data not blocks", vecSessionKey, "AAAA", vecIV, vecAppID, wechat.ErrMalformed},
		{"data empty", vecSessionKey, "", vecIV, vecAppID, wechat.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wechat.DecryptData(tc.key, tc.data, tc.iv, tc.appID)
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), tc.key)
		})
	}
}

// End to end with the simulator: data encrypted under the key of one login
// fails after wx.login rotated the key, and works with the new key.
func TestDecryptData_simulatorRotation(t *testing.T) {
	e := newEnv(t, wechattest.Config{RotateSessionKeyOnLogin: true})
	c := e.client(mpID, mpSecret)
	s1, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	data, iv, err := e.sim.EncryptData(mpID, "alice", map[string]any{"phoneNumber": "13800138001"})
	require.NoError(t, err)
	pt, err := wechat.DecryptData(s1.SessionKey, data, iv, mpID)
	require.NoError(t, err)
	require.Contains(t, string(pt), "13800138001")

	s2, err := c.Code2Session(t.Context(), e.loginCode(t, mpID, "alice"))
	require.NoError(t, err)
	data, iv, err = e.sim.EncryptData(mpID, "alice", map[string]any{"phoneNumber": "13800138001"})
	require.NoError(t, err)
	_, err = wechat.DecryptData(s1.SessionKey, data, iv, mpID)
	require.ErrorIs(t, err, wechat.ErrSessionKeyMismatch)
	_, err = wechat.DecryptData(s2.SessionKey, data, iv, mpID)
	require.NoError(t, err)
}

func TestVerifyRawData(t *testing.T) {
	require.Equal(t, vecRawSig, wechat.RawDataSignature(vecRawData, vecSessionKey))
	require.True(t, wechat.VerifyRawData(vecRawData, vecRawSig, vecSessionKey))
	require.True(t, wechat.VerifyRawData(vecRawData, strings.ToUpper(vecRawSig), vecSessionKey))
	require.False(t, wechat.VerifyRawData(vecRawData+" ", vecRawSig, vecSessionKey))
	require.False(t, wechat.VerifyRawData(vecRawData, vecRawSig, "HyVFkGl5F5OQWJZZaNzBBg=="))
	require.False(t, wechat.VerifyRawData(vecRawData, "", vecSessionKey))
	// The documentation's own example (§4.2).
	require.Equal(t, "75e81ceda165f4ffa64f4068af58c64b8f54b88c", wechat.RawDataSignature(
		`{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`,
		"HyVFkGl5F5OQWJZZaNzBBg=="))
}

func TestSessionSignature(t *testing.T) {
	require.Equal(t, vecCheckSig, wechat.SessionSignature(vecSessionKey, ""))
	require.Equal(t, "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b",
		wechat.SessionSignature("o0q0otL8aEzpcZL/FT9WsQ==", `{"foo":"bar"}`))
}
